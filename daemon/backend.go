package daemon

import "github.com/berth-dev/berth/api"

var _ api.Backend = (*Daemon)(nil)
