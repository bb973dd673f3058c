package runopts

import (
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/pflag"
)

// healthFlags are docker's --health-* and --no-healthcheck flags.
type healthFlags struct {
	cmd                                       string
	interval, timeout, startPeriod, startIntv time.Duration
	retries                                   int
	none                                      bool
	fs                                        *pflag.FlagSet
}

func addHealthFlags(fs *pflag.FlagSet) *healthFlags {
	h := &healthFlags{fs: fs}
	fs.StringVar(&h.cmd, "health-cmd", "", "Command to run to check health")
	fs.DurationVar(&h.interval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	fs.DurationVar(&h.timeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	fs.DurationVar(&h.startPeriod, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	fs.DurationVar(&h.startIntv, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	fs.IntVar(&h.retries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	fs.BoolVar(&h.none, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")
	return h
}

// apply sets cfg.Healthcheck from the flags, with docker's checks.
func (h *healthFlags) apply(cfg *container.Config) error {
	if h == nil {
		return nil
	}
	set := h.cmd != "" || h.interval != 0 || h.timeout != 0 || h.startPeriod != 0 || h.startIntv != 0 || h.retries != 0
	if h.none {
		if set {
			return errors.New("--no-healthcheck conflicts with --health-* options")
		}
		cfg.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
		return nil
	}
	if !set {
		return nil
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"interval", h.interval}, {"timeout", h.timeout}, {"start-period", h.startPeriod}, {"start-interval", h.startIntv}} {
		if d.v < 0 {
			return fmt.Errorf("--health-%s cannot be negative", d.name)
		}
	}
	if h.retries < 0 {
		return errors.New("--health-retries cannot be negative")
	}
	hc := &container.HealthConfig{
		Interval: h.interval, Timeout: h.timeout, StartPeriod: h.startPeriod, StartInterval: h.startIntv, Retries: h.retries,
	}
	if h.cmd != "" {
		hc.Test = []string{"CMD-SHELL", h.cmd}
	}
	cfg.Healthcheck = hc
	return nil
}
