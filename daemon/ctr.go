package daemon

import (
	"sync"
)

// ctrService holds the daemon's state for execs and health checks. Execs
// live only as long as the daemon, as in Docker; health monitors are
// restarted for the running containers a restarted daemon finds.
type ctrService struct {
	mu     sync.Mutex
	execs  map[string]*execRecord
	health map[string]*healthMonitor // by container id
}

func newCtrService() *ctrService {
	return &ctrService{execs: map[string]*execRecord{}, health: map[string]*healthMonitor{}}
}
