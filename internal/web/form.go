package web

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

// form reads a posted page. Values that cannot even be parsed (a port that
// is not a number) become field errors with the configuration path they
// concern, like the validation errors of the lifecycle.
type form struct {
	r    *http.Request
	errs config.Errors
}

func (f *form) str(name string) string { return strings.TrimSpace(f.r.PostFormValue(name)) }

func (f *form) bool(name string) bool {
	v := f.r.PostFormValue(name)
	return v == "on" || v == "yes" || v == "true" || v == "1"
}

func (f *form) fail(path, format string, args ...any) {
	f.errs = append(f.errs, config.FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (f *form) int(name, path string) int { return f.atoi(f.str(name), path) }

func (f *form) atoi(s, path string) int {
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		f.fail(path, "%q is not a whole number", s)
	}
	return n
}

func (f *form) dur(name, path string) config.Duration { return f.parseDur(f.str(name), path) }

func (f *form) parseDur(s, path string) config.Duration {
	if s == "" {
		return 0
	}
	if n, err := strconv.Atoi(s); err == nil {
		return config.Duration(time.Duration(n) * time.Second)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		f.fail(path, "%q is not a duration (e.g. 60s, 5m)", s)
	}
	return config.Duration(d)
}

// lines splits a textarea or comma list into trimmed non-empty items.
func lines(s string) []string {
	out := []string{}
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' || r == '\r' }) {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// rows returns the rows of a table posted as parallel fields
// "<table>.<col>" with a "<table>.key" per row; rows whose key is checked in
// "<table>.del" and rows whose text fields are all empty are dropped. A
// column written "!col" is a select: always filled, so it does not make a
// row non-empty.
func (f *form) rows(table string, cols ...string) []map[string]string {
	if err := f.r.ParseForm(); err != nil {
		return nil
	}
	keys := f.r.PostForm[table+".key"]
	del := f.r.PostForm[table+".del"]
	var out []map[string]string
	for i, k := range keys {
		if slices.Contains(del, k) {
			continue
		}
		row := map[string]string{}
		// A row of selects only is never empty.
		empty := !slices.ContainsFunc(cols, func(c string) bool { return strings.HasPrefix(c, "!") }) ||
			slices.ContainsFunc(cols, func(c string) bool { return !strings.HasPrefix(c, "!") })
		for _, c := range cols {
			sel := strings.HasPrefix(c, "!")
			c = strings.TrimPrefix(c, "!")
			vals := f.r.PostForm[table+"."+c]
			v := ""
			if i < len(vals) {
				v = strings.TrimSpace(vals[i])
			}
			if v != "" && !sel {
				empty = false
			}
			row[c] = v
		}
		if !empty {
			out = append(out, row)
		}
	}
	return out
}

var errStale = errors.New("the preliminary configuration was changed by someone else since this page was loaded; the page shows the current values, make your change again")
