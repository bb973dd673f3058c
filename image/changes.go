package image

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// applyChanges applies Dockerfile instructions (docker import/commit
// --change) to cfg: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD,
// STOPSIGNAL, USER, VOLUME, WORKDIR.
func applyChanges(cfg *dockerspec.DockerOCIImageConfig, changes []string) error {
	cmdSet := false
	for _, ch := range changes {
		ch = strings.TrimSpace(ch)
		if ch == "" {
			continue
		}
		instr, rest, _ := strings.Cut(ch, " ")
		if i := strings.IndexAny(instr, "\t"); i >= 0 {
			instr, rest = instr[:i], instr[i+1:]+" "+rest
		}
		rest = strings.TrimSpace(rest)
		bad := func(format string, a ...any) error {
			return errdefs.InvalidParameterf("%s: %s", strings.ToUpper(instr), fmt.Sprintf(format, a...))
		}
		switch strings.ToUpper(instr) {
		case "CMD":
			cfg.Cmd = commandForm(rest)
			cmdSet = true
		case "ENTRYPOINT":
			cfg.Entrypoint = commandForm(rest)
			if !cmdSet {
				cfg.Cmd = nil // as in a Dockerfile: a new ENTRYPOINT drops the inherited CMD
			}
		case "ENV":
			pairs, err := keyValues(rest, true)
			if err != nil {
				return bad("%v", err)
			}
			for _, kv := range pairs {
				cfg.Env = setEnv(cfg.Env, kv[0], kv[1])
			}
		case "LABEL":
			pairs, err := keyValues(rest, false)
			if err != nil {
				return bad("%v", err)
			}
			if cfg.Labels == nil {
				cfg.Labels = map[string]string{}
			}
			for _, kv := range pairs {
				cfg.Labels[kv[0]] = kv[1]
			}
		case "EXPOSE":
			words, err := splitWords(rest)
			if err != nil || len(words) == 0 {
				return bad("requires at least one port")
			}
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = map[string]struct{}{}
			}
			for _, w := range words {
				ports, err := parsePorts(w)
				if err != nil {
					return bad("%v", err)
				}
				for _, p := range ports {
					cfg.ExposedPorts[p] = struct{}{}
				}
			}
		case "VOLUME":
			vols := jsonArray(rest)
			if vols == nil {
				var err error
				if vols, err = splitWords(rest); err != nil {
					return bad("%v", err)
				}
			}
			if len(vols) == 0 {
				return bad("requires at least one argument")
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			for _, v := range vols {
				if v = strings.TrimSpace(v); v == "" {
					return bad("volume specified can not be an empty string")
				}
				cfg.Volumes[v] = struct{}{}
			}
		case "WORKDIR":
			if rest == "" {
				return bad("requires exactly one argument")
			}
			dir := unquote(rest)
			if !path.IsAbs(dir) {
				base := cfg.WorkingDir
				if base == "" {
					base = "/"
				}
				dir = path.Join(base, dir)
			}
			cfg.WorkingDir = path.Clean(dir)
		case "USER":
			if rest == "" {
				return bad("requires exactly one argument")
			}
			cfg.User = unquote(rest)
		case "STOPSIGNAL":
			if rest == "" {
				return bad("requires exactly one argument")
			}
			cfg.StopSignal = unquote(rest)
		case "ONBUILD":
			if rest == "" {
				return bad("requires at least one argument")
			}
			cfg.OnBuild = append(cfg.OnBuild, rest)
		default:
			return errdefs.InvalidParameterf("%s is not a valid change command", instr)
		}
	}
	return nil
}

// commandForm parses exec form (a JSON array) or shell form.
func commandForm(s string) []string {
	if args := jsonArray(s); args != nil {
		return args
	}
	if s == "" {
		return nil
	}
	return []string{"/bin/sh", "-c", s}
}

func jsonArray(s string) []string {
	if !strings.HasPrefix(s, "[") {
		return nil
	}
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil
	}
	if out == nil {
		out = []string{}
	}
	return out
}

func setEnv(env []string, key, value string) []string {
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}

// keyValues parses "k=v k2='v 2'" or, when legacy is allowed, "k some value".
func keyValues(s string, legacy bool) ([][2]string, error) {
	words, err := splitWords(s)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("requires at least one argument")
	}
	if !strings.Contains(words[0], "=") {
		if !legacy || len(words) < 2 {
			return nil, fmt.Errorf("requires key=value arguments")
		}
		key, value, _ := strings.Cut(strings.TrimSpace(s), " ")
		return [][2]string{{key, strings.TrimSpace(value)}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not of the form key=value", w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// splitWords splits on blanks, honouring single and double quotes and
// backslash escapes, as the Dockerfile parser does for ENV and LABEL.
func splitWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

func unquote(s string) string {
	if w, err := splitWords(s); err == nil && len(w) == 1 {
		return w[0]
	}
	return s
}

// parsePorts turns "80", "53/udp" or "8000-8002/tcp" into "port/proto" keys.
func parsePorts(s string) ([]string, error) {
	ports, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid proto: %s", proto)
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	start, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid port %q", s)
	}
	end := start
	if isRange {
		if end, err = strconv.ParseUint(hi, 10, 16); err != nil || end < start {
			return nil, fmt.Errorf("invalid port range %q", s)
		}
	}
	var out []string
	for p := start; p <= end; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}
