package formatter

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
)

var now = time.Date(2026, 11, 22, 15, 0, 0, 0, time.UTC)

func sampleContainers() []any {
	return []any{
		Container{Trunc: true, Now: now, C: container.Summary{
			ID: "a088b1ce8fb22a074465f16fd20ecd84f330dbb8a47fc4d52cf88d13497b52d1", Names: []string{"/web"},
			Image: "docker.io/library/busybox:latest", Command: "sh -c 'while true; do echo hi; sleep 1; done'",
			Created: now.Add(-3 * time.Minute).Unix(), State: "running", Status: "Up 3 minutes",
			Ports:  []container.PortSummary{{IP: netip.MustParseAddr("0.0.0.0"), PrivatePort: 80, PublicPort: 18080, Type: "tcp"}},
			Labels: map[string]string{"b": "2", "a": "1"},
		}},
		Container{Trunc: true, Now: now, C: container.Summary{
			ID: "f60f4138a50e10ff3bc4825b17846a8dbd8350a12bea69ff650d6918ec524f65", Names: []string{"/quick_fox"},
			Image: "busybox:local", Command: "echo hi", Created: now.Add(-2 * time.Second).Unix(),
			State: "exited", Status: "Exited (0) 1 second ago",
		}},
	}
}

func TestContainerTable(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, ContainerTable, ContainerHeader, sampleContainers()); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"CONTAINER ID   IMAGE            COMMAND                  CREATED         STATUS                    PORTS                   NAMES\n" +
		"a088b1ce8fb2   busybox:latest   \"sh -c 'while true; …\"   3 minutes ago   Up 3 minutes              0.0.0.0:18080->80/tcp   web\n" +
		"f60f4138a50e   busybox:local    \"echo hi\"                2 seconds ago   Exited (0) 1 second ago                           quick_fox\n"
	if buf.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestContainerTableEmptyKeepsHeader(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, ContainerTable, ContainerHeader, nil); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n" {
		t.Errorf("empty table %q", buf.String())
	}
}

func TestTemplates(t *testing.T) {
	for _, tc := range []struct {
		format string
		want   string
	}{
		{"{{.ID}}", "a088b1ce8fb2\nf60f4138a50e\n"},
		{"{{.Names}}\\t{{.State}}", "web\trunning\nquick_fox\texited\n"},
		{"table {{.Names}}\t{{.Status}}", "NAMES       STATUS\nweb         Up 3 minutes\nquick_fox   Exited (0) 1 second ago\n"},
		{"{{.Labels}} {{.Label \"b\"}}", "a=1,b=2 2\n \n"},
		{"{{upper .Names}} {{json .State}}", "WEB \"running\"\nQUICK_FOX \"exited\"\n"},
	} {
		var buf bytes.Buffer
		if err := Write(&buf, tc.format, ContainerHeader, sampleContainers()); err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		if buf.String() != tc.want {
			t.Errorf("%q: got %q, want %q", tc.format, buf.String(), tc.want)
		}
	}
}

func TestJSONFormat(t *testing.T) {
	for _, f := range []string{"{{json .}}", "json"} {
		var buf bytes.Buffer
		if err := Write(&buf, f, ContainerHeader, sampleContainers()[1:]); err != nil {
			t.Fatal(err)
		}
		got := buf.String()
		for _, part := range []string{`"ID":"f60f4138a50e"`, `"Names":"quick_fox"`, `"Command":"\"echo hi\""`, `"RunningFor":"2 seconds ago"`, `"State":"exited"`, `"Size":"0B"`} {
			if !strings.Contains(got, part) {
				t.Errorf("%s: %s lacks %s", f, got, part)
			}
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, "{{.ID", ContainerHeader, sampleContainers()); err == nil {
		t.Error("unterminated template accepted")
	}
	if err := Write(&buf, "{{.NoSuchField}}", ContainerHeader, sampleContainers()); err == nil {
		t.Error("unknown field accepted")
	}
}

func TestSince(t *testing.T) {
	for _, tc := range []struct {
		ago  time.Duration
		want string
	}{
		{2 * time.Second, "2 seconds ago"},
		{0, "Less than a second ago"},
		{90 * time.Second, "About a minute ago"},
		{3 * time.Minute, "3 minutes ago"},
		{50 * time.Minute, "50 minutes ago"},
		{61 * time.Minute, "About an hour ago"},
		{5 * time.Hour, "5 hours ago"},
		{72 * time.Hour, "3 days ago"},
		{15 * 24 * time.Hour, "2 weeks ago"},
	} {
		if got := Since(now, now.Add(-tc.ago)); got != tc.want {
			t.Errorf("Since(-%v) = %q, want %q", tc.ago, got, tc.want)
		}
	}
}

func TestImageTableAndRows(t *testing.T) {
	imgs := []image.Summary{
		{ID: "sha256:9b7a3ff3fd9fa1d6ee7b4b4d7f3c62a4da5e4b1fa0a84c4faa5d2e0e4ae6a1d1", RepoTags: []string{"busybox:local", "127.0.0.1:5099/rsx/busybox:1"},
			RepoDigests: []string{"127.0.0.1:5099/rsx/busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111"},
			Created:     now.Add(-49 * time.Hour).Unix(), Size: 4_270_000},
		{ID: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Created: now.Add(-10 * time.Second).Unix(), Size: 1024},
	}
	rows := ImageRows(imgs, true, now)
	var anys []any
	for _, r := range rows {
		anys = append(anys, r)
	}
	var buf bytes.Buffer
	if err := Write(&buf, ImageTable, ImageHeader, anys); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"REPOSITORY                   TAG       IMAGE ID       CREATED          SIZE\n" +
		"busybox                      local     9b7a3ff3fd9f   2 days ago       4.27MB\n" +
		"127.0.0.1:5099/rsx/busybox   1         9b7a3ff3fd9f   2 days ago       4.27MB\n" +
		"<none>                       <none>    0123456789ab   10 seconds ago   1.02kB\n"
	if buf.String() != want {
		t.Errorf("images:\n%s\nwant:\n%s", buf.String(), want)
	}
	if rows[1].Digest() != "sha256:1111111111111111111111111111111111111111111111111111111111111111" || rows[0].Digest() != "<none>" {
		t.Errorf("digests %q %q", rows[0].Digest(), rows[1].Digest())
	}
	full := ImageRows(imgs[1:], false, now)[0].ID()
	if full != imgs[1].ID {
		t.Errorf("--no-trunc ID %q", full)
	}
}

func TestHistoryTable(t *testing.T) {
	rows := []any{
		History{Trunc: true, Human: true, Now: now, H: image.HistoryResponseItem{ID: "sha256:9b7a3ff3fd9fa1d6ee7b4b4d7f3c62a4da5e4b1fa0a84c4faa5d2e0e4ae6a1d1", Created: now.Add(-2 * time.Hour).Unix(), CreatedBy: "/bin/sh -c #(nop)  CMD [\"sh\"] and a very long tail of text", Size: 0}},
		History{Trunc: true, Human: true, Now: now, H: image.HistoryResponseItem{ID: "<missing>", Created: now.Add(-2 * time.Hour).Unix(), CreatedBy: "Imported from -", Size: 4_270_000, Comment: "imported"}},
	}
	var buf bytes.Buffer
	if err := Write(&buf, HistoryTable, HistoryHeader, rows); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"IMAGE          CREATED       CREATED BY                                      SIZE      COMMENT\n" +
		"9b7a3ff3fd9f   2 hours ago   /bin/sh -c #(nop)  CMD [\"sh\"] and a very lon…   0B        \n" +
		"<missing>      2 hours ago   Imported from -                                 4.27MB    imported\n"
	if buf.String() != want {
		t.Errorf("history:\n%q\nwant:\n%q", buf.String(), want)
	}
}

func TestEllipsisAndTruncateID(t *testing.T) {
	if got := Ellipsis("abcdef", 4); got != "abc…" {
		t.Errorf("Ellipsis %q", got)
	}
	if got := Ellipsis("abc", 4); got != "abc" {
		t.Errorf("Ellipsis %q", got)
	}
	if got := TruncateID("sha256:0123456789abcdef"); got != "0123456789ab" {
		t.Errorf("TruncateID %q", got)
	}
}
