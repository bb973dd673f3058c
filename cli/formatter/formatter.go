// Package formatter renders berth's client output the way the docker CLI
// does: tab-aligned tables, `--format` Go templates (with the `table` and
// `json` forms), human durations and sizes.
package formatter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"unicode/utf8"
)

// Funcs are the template functions docker's --format offers.
var Funcs = template.FuncMap{
	"json": func(v any) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return ""
		}
		return strings.TrimSpace(buf.String())
	},
	"split":    strings.Split,
	"join":     strings.Join,
	"title":    title,
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"pad":      func(s string, pre, post int) string { return strings.Repeat(" ", pre) + s + strings.Repeat(" ", post) },
	"truncate": func(s string, n int) string { return Truncate(s, n) },
	"println":  func(args ...any) string { return fmt.Sprintln(args...) },
}

func title(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		r, n := utf8.DecodeRuneInString(w)
		words[i] = strings.ToUpper(string(r)) + w[n:]
	}
	return strings.Join(words, " ")
}

// Truncate keeps the first n runes.
func Truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// Ellipsis shortens s to at most max runes, ending in "…" when cut.
func Ellipsis(s string, max int) string {
	if max <= 0 {
		return ""
	}
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	if max == 1 {
		return string(r[:1])
	}
	return string(r[:max-1]) + "…"
}

// IsTable reports whether a --format asks for a table.
func IsTable(format string) bool { return strings.HasPrefix(format, "table") }

// Parse compiles a --format template with docker's functions. `json` is
// shorthand for `{{json .}}`; literal "\t" and "\n" are unescaped.
func Parse(format string) (*template.Template, error) {
	format = normalize(format)
	t, err := template.New("").Funcs(Funcs).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return t, nil
}

func normalize(format string) string {
	if format == "json" {
		return "{{json .}}"
	}
	if IsTable(format) {
		format = strings.TrimPrefix(format, "table")
		format = strings.TrimLeft(format, " ")
	}
	format = strings.ReplaceAll(format, `\t`, "\t")
	format = strings.ReplaceAll(format, `\n`, "\n")
	return format
}

// Write renders rows with format. For tables the header row is the same
// template executed on header (a map from field name to column title),
// and columns are aligned like docker's (min width 10, padding 3).
func Write(out io.Writer, format string, header map[string]string, rows []any) error {
	tmpl, err := Parse(format)
	if err != nil {
		return err
	}
	if !IsTable(format) {
		var buf bytes.Buffer
		for _, r := range rows {
			buf.Reset()
			if err := tmpl.Execute(&buf, r); err != nil {
				return fmt.Errorf("template: %w", err)
			}
			buf.WriteByte('\n')
			if _, err := out.Write(buf.Bytes()); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
	if header != nil {
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, header); err == nil {
			buf.WriteByte('\n')
			_, _ = tw.Write(buf.Bytes())
		}
	}
	for _, r := range rows {
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, r); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		buf.WriteByte('\n')
		_, _ = tw.Write(buf.Bytes())
	}
	return tw.Flush()
}

// TruncateID shortens an ID to 12 hex digits, dropping any "sha256:".
func TruncateID(id string) string {
	if i := strings.IndexRune(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}
