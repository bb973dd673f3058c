package api

import (
	"testing"

	"github.com/moby/moby/api/types/container"
)

// docker-py's exec_create body, as docker-compose 1.29 sends it: the
// legacy Container field is ignored, not refused.
func TestDecodeDockerPyExecCreate(t *testing.T) {
	body := `{"AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"Privileged":false,"User":"","Cmd":["echo","hi"],"Container":"abc"}`
	var req struct {
		container.ExecCreateRequest
		Detach bool
	}
	if err := decodeJSON([]byte(body), &req); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(req.Cmd) != 2 || req.Cmd[1] != "hi" || !req.AttachStdout {
		t.Errorf("decoded %+v", req.ExecCreateRequest)
	}
	if err := decodeJSON([]byte(`{"Cmd":["x"],"Bogus":1}`), &req); err == nil {
		t.Error("an unknown field that is not a legacy one was accepted")
	}
}
