package cgroups

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadUsageFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"blkio.throttle.io_service_bytes_recursive": "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\nTotal 12288\n",
		"memory.stat": "cache 36864\ntotal_inactive_file 4096\nbad line\n",
		"io.stat":     "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n",
		"cpu.stat":    "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := readBlkioV1(dir, "blkio.throttle.io_service_bytes_recursive")
	if len(b) != 4 || b[0] != (BlkioEntry{8, 0, "read", 4096}) || b[1] != (BlkioEntry{8, 0, "write", 8192}) {
		t.Errorf("v1 blkio %+v", b)
	}
	m := readFlat(dir, "memory.stat")
	if len(m) != 2 || m["total_inactive_file"] != 4096 {
		t.Errorf("memory.stat %v", m)
	}
	u := readUsageV2(dir)
	if u.CPUTotalNs != 1500000 || u.CPUUserNs != 1000000 || u.Throttle.Periods != 3 {
		t.Errorf("v2 cpu %+v", u)
	}
	if len(u.IOBytes) != 2 || u.IOBytes[1] != (BlkioEntry{8, 0, "write", 200}) || len(u.IOOps) != 2 {
		t.Errorf("v2 io %+v %+v", u.IOBytes, u.IOOps)
	}
}
