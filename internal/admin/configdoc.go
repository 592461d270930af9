package admin

// Interim document helpers until the config package exports its own
// strict decoding, get/set by path and diff; then these become one-line
// calls into it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/palisade-sbc/palisade/internal/config"
)

// decodeConfig parses a document strictly (unknown fields are errors).
func decodeConfig(b []byte) (*config.Config, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c config.Config
	if err := dec.Decode(&c); err != nil {
		return nil, config.Errors{{Path: "", Message: err.Error()}}
	}
	return &c, nil
}

type seg struct {
	name  string
	index int // -1 for a name
}

func parsePath(p string) ([]seg, error) {
	var out []seg
	for part := range strings.SplitSeq(p, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name == "" && len(out) == 0 {
			return nil, Errorf(http.StatusBadRequest, "bad path %q", p)
		}
		if name != "" {
			out = append(out, seg{name: name, index: -1})
		}
		for rest != "" {
			num, after, ok := strings.Cut(rest, "]")
			n, err := strconv.Atoi(num)
			if !ok || err != nil || n < 0 {
				return nil, Errorf(http.StatusBadRequest, "bad index in path %q", p)
			}
			out = append(out, seg{index: n})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return out, nil
}

func toTree(cfg *config.Config) (any, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var v any
	return v, json.Unmarshal(b, &v)
}

func walk(v any, segs []seg, path string) (any, error) {
	for _, s := range segs {
		switch {
		case s.index < 0:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, Errorf(http.StatusNotFound, "%s: no field %q here", path, s.name)
			}
			if v, ok = m[s.name]; !ok {
				return nil, Errorf(http.StatusNotFound, "%s: no field %q", path, s.name)
			}
		default:
			a, ok := v.([]any)
			if !ok || s.index >= len(a) {
				return nil, Errorf(http.StatusNotFound, "%s: index %d out of range", path, s.index)
			}
			v = a[s.index]
		}
	}
	return v, nil
}

func configGet(cfg *config.Config, path string) (any, error) {
	segs, err := parsePath(path)
	if err != nil {
		return nil, err
	}
	tree, err := toTree(cfg)
	if err != nil {
		return nil, err
	}
	return walk(tree, segs, path)
}

func configSet(cfg *config.Config, path string, raw []byte) error {
	segs, err := parsePath(path)
	if err != nil {
		return err
	}
	var val any
	if err := json.Unmarshal(raw, &val); err != nil {
		return Errorf(http.StatusBadRequest, "the value is not JSON: %v", err)
	}
	tree, err := toTree(cfg)
	if err != nil {
		return err
	}
	parent, err := walk(tree, segs[:len(segs)-1], path)
	if err != nil {
		return err
	}
	last := segs[len(segs)-1]
	switch p := parent.(type) {
	case map[string]any:
		if _, ok := p[last.name]; !ok || last.index >= 0 {
			return Errorf(http.StatusNotFound, "%s: no such field", path)
		}
		p[last.name] = val
	case []any:
		if last.index < 0 || last.index >= len(p) {
			return Errorf(http.StatusNotFound, "%s: index out of range", path)
		}
		p[last.index] = val
	default:
		return Errorf(http.StatusNotFound, "%s: no such field", path)
	}
	b, err := json.Marshal(tree)
	if err != nil {
		return err
	}
	nc, err := decodeConfig(b)
	if err != nil {
		return config.Errors{{Path: path, Message: strings.TrimPrefix(err.Error(), ": ")}}
	}
	*cfg = *nc
	return nil
}

// Change is one difference between two documents.
type Change struct {
	Path string `json:"path"`
	A    any    `json:"a,omitempty"`
	B    any    `json:"b,omitempty"`
}

func configDiff(a, b *config.Config) ([]Change, error) {
	ta, err := toTree(a)
	if err != nil {
		return nil, err
	}
	tb, err := toTree(b)
	if err != nil {
		return nil, err
	}
	var out []Change
	diffTree("", ta, tb, &out)
	return out, nil
}

func diffTree(path string, a, b any, out *[]Change) {
	ma, oka := a.(map[string]any)
	mb, okb := b.(map[string]any)
	if oka && okb {
		keys := map[string]bool{}
		for k := range ma {
			keys[k] = true
		}
		for k := range mb {
			keys[k] = true
		}
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			p := k
			if path != "" {
				p = path + "." + k
			}
			diffTree(p, ma[k], mb[k], out)
		}
		return
	}
	la, oka := a.([]any)
	lb, okb := b.([]any)
	if oka && okb {
		for i := 0; i < max(len(la), len(lb)); i++ {
			var x, y any
			if i < len(la) {
				x = la[i]
			}
			if i < len(lb) {
				y = lb[i]
			}
			diffTree(fmt.Sprintf("%s[%d]", path, i), x, y, out)
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		*out = append(*out, Change{Path: path, A: a, B: b})
	}
}
