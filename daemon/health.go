package daemon

// healthMonitor runs one container's health checks.
type healthMonitor struct{}
