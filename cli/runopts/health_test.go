package runopts

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestHealthFlags(t *testing.T) {
	tests := []struct {
		args    []string
		test    []string
		retries int
		intv    time.Duration
		err     string
	}{
		{args: nil},
		{args: []string{"--health-cmd", "curl -f x", "--health-interval", "2s", "--health-retries", "4"}, test: []string{"CMD-SHELL", "curl -f x"}, retries: 4, intv: 2 * time.Second},
		{args: []string{"--no-healthcheck"}, test: []string{"NONE"}},
		{args: []string{"--health-interval", "1s"}, intv: time.Second},
		{args: []string{"--no-healthcheck", "--health-cmd", "x"}, err: "--no-healthcheck conflicts with --health-* options"},
		{args: []string{"--health-timeout", "-1s"}, err: "--health-timeout cannot be negative"},
		{args: []string{"--health-retries", "-1"}, err: "--health-retries cannot be negative"},
	}
	for _, tc := range tests {
		fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
		o := AddFlags(fs, true)
		if err := fs.Parse(append(tc.args, "busybox")); err != nil {
			t.Fatal(err)
		}
		req, err := o.Parse(fs.Args(), nil)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: err %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		hc := req.Config.Healthcheck
		if tc.args == nil {
			if hc != nil {
				t.Errorf("no flags: healthcheck %+v", hc)
			}
			continue
		}
		if hc == nil || strings.Join(hc.Test, "|") != strings.Join(tc.test, "|") || hc.Retries != tc.retries || hc.Interval != tc.intv {
			t.Errorf("%v: %+v", tc.args, hc)
		}
	}
}
