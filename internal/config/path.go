package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// A path names one value in the document the way error messages do:
// "sip.listeners[0].port", "media.default_policy.allow_transcoding",
// "peers[1]", `peers[0].headers["X-MS-SBC"]`. The empty path is the whole
// document.

type step struct {
	key   string
	index int // -1 for a key step
}

func (s step) String() string {
	if s.index >= 0 {
		return "[" + strconv.Itoa(s.index) + "]"
	}
	return s.key
}

// ParsePath splits a path into its steps and checks its syntax.
func parsePath(path string) ([]step, error) {
	var steps []step
	s := path
	for s != "" {
		switch {
		case s[0] == '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, fmt.Errorf("path %q: missing ]", path)
			}
			inner := s[1:end]
			if strings.HasPrefix(inner, `"`) {
				// A quoted key may hold ']' itself: find the closing quote.
				k, rest, err := unquotePrefix(s[1:])
				if err != nil || !strings.HasPrefix(rest, "]") {
					return nil, fmt.Errorf("path %q: bad quoted key", path)
				}
				steps = append(steps, step{key: k, index: -1})
				s = rest[1:]
			} else {
				n, err := strconv.Atoi(inner)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("path %q: %q is not a list index", path, inner)
				}
				steps = append(steps, step{index: n})
				s = s[end+1:]
			}
		case s[0] == '.':
			if len(steps) == 0 {
				return nil, fmt.Errorf("path %q: starts with '.'", path)
			}
			s = s[1:]
			if s == "" || s[0] == '.' || s[0] == '[' {
				return nil, fmt.Errorf("path %q: empty name after '.'", path)
			}
		default:
			if len(steps) > 0 && !strings.HasSuffix(path[:len(path)-len(s)], ".") {
				return nil, fmt.Errorf("path %q: missing '.' before %q", path, s)
			}
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			steps = append(steps, step{key: s[:end], index: -1})
			s = s[end:]
		}
	}
	return steps, nil
}

func unquotePrefix(s string) (string, string, error) {
	for i := 1; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == '"' {
			k, err := strconv.Unquote(s[:i+1])
			return k, s[i+1:], err
		}
	}
	return "", "", fmt.Errorf("unterminated quote")
}

func pathString(steps []step) string {
	p := ""
	for _, s := range steps {
		if s.index >= 0 {
			p = joinIndex(p, s.index)
		} else {
			p = joinKey(p, s.key)
		}
	}
	return p
}

func configTree(cfg *Config) (any, error) {
	b, err := Encode(cfg)
	if err != nil {
		return nil, err
	}
	return parseTree(b)
}

// lookup walks steps from root; it returns the value and an error naming the
// first step that does not exist.
func lookup(root any, steps []step) (any, error) {
	cur := root
	for i, s := range steps {
		here := pathString(steps[:i+1])
		switch c := cur.(type) {
		case *object:
			if s.index >= 0 {
				return nil, fmt.Errorf("%s: %s is an object, not a list", here, orDoc(pathString(steps[:i])))
			}
			v, ok := c.vals[s.key]
			if !ok {
				return nil, fmt.Errorf("%s: no such field", here)
			}
			cur = v
		case []any:
			if s.index < 0 {
				return nil, fmt.Errorf("%s: %s is a list; use an index such as [0]", here, orDoc(pathString(steps[:i])))
			}
			if s.index >= len(c) {
				return nil, fmt.Errorf("%s: index %d is out of range (the list has %d elements)", here, s.index, len(c))
			}
			cur = c[s.index]
		default:
			return nil, fmt.Errorf("%s: %s is %s, which has no fields", here, orDoc(pathString(steps[:i])), describe(cur))
		}
	}
	return cur, nil
}

func orDoc(p string) string {
	if p == "" {
		return "the document"
	}
	return p
}

// Get returns the JSON value at path, e.g. Get(cfg, "sip.listeners[0].port")
// = 5060. Errors name the path.
func Get(cfg *Config, path string) (json.RawMessage, error) {
	steps, err := parsePath(path)
	if err != nil {
		return nil, err
	}
	root, err := configTree(cfg)
	if err != nil {
		return nil, err
	}
	v, err := lookup(root, steps)
	if err != nil {
		// Fields left out of the encoding because they are empty
		// (omitempty) exist all the same: answer their zero value.
		if len(steps) > 0 {
			if _, perr := lookup(root, steps[:len(steps)-1]); perr == nil {
				if t, ok := omittedField(steps); ok {
					z := zeroTree(t)
					if t.Kind() == reflect.Map {
						z = newObject()
					}
					return json.RawMessage(marshalIndent(z)), nil
				}
			}
		}
		return nil, err
	}
	return json.RawMessage(marshalIndent(v)), nil
}

// Set returns a copy of cfg with the value at path replaced by value (any
// JSON). Setting list index len(list) appends an element. The result is
// decoded strictly (so a wrong type or an unknown field is an error naming
// its path) but not validated; cfg itself is not changed.
func Set(cfg *Config, path string, value json.RawMessage) (*Config, error) {
	return edit(cfg, path, func(parent any, last step, here string) (any, error) {
		v, err := parseTree(value)
		if err != nil {
			return nil, fmt.Errorf("%s: the new value is not JSON: %w", here, err)
		}
		switch p := parent.(type) {
		case *object:
			p.set(last.key, v)
			return p, nil
		case []any:
			if last.index == len(p) {
				return append(p, v), nil
			}
			p[last.index] = v
			return p, nil
		}
		return nil, fmt.Errorf("%s: cannot set inside %s", here, describe(parent))
	})
}

// Delete returns a copy of cfg without the value at path: a list element is
// removed (the following ones move up); an object member goes back to its
// default. cfg itself is not changed.
func Delete(cfg *Config, path string) (*Config, error) {
	return edit(cfg, path, func(parent any, last step, here string) (any, error) {
		switch p := parent.(type) {
		case *object:
			p.remove(last.key)
			return p, nil
		case []any:
			if last.index >= len(p) {
				return nil, fmt.Errorf("%s: index %d is out of range (the list has %d elements)", here, last.index, len(p))
			}
			return append(p[:last.index:last.index], p[last.index+1:]...), nil
		}
		return nil, fmt.Errorf("%s: cannot delete inside %s", here, describe(parent))
	})
}

// edit finds the parent of path, lets change produce its new value, puts it
// back into the tree, and decodes the result strictly.
func edit(cfg *Config, path string, change func(parent any, last step, here string) (any, error)) (*Config, error) {
	steps, err := parsePath(path)
	if err != nil {
		return nil, err
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("the path is empty; name a field such as sip.listeners[0].port")
	}
	root, err := configTree(cfg)
	if err != nil {
		return nil, err
	}
	parentSteps, last := steps[:len(steps)-1], steps[len(steps)-1]
	here := pathString(steps)
	parent, err := lookup(root, parentSteps)
	if err != nil {
		return nil, err
	}
	switch p := parent.(type) {
	case *object:
		if last.index >= 0 {
			return nil, fmt.Errorf("%s: %s is an object, not a list", here, orDoc(pathString(parentSteps)))
		}
	case []any:
		if last.index < 0 {
			return nil, fmt.Errorf("%s: %s is a list; use an index such as [0]", here, orDoc(pathString(parentSteps)))
		}
		if last.index > len(p) {
			return nil, fmt.Errorf("%s: index %d is out of range (the list has %d elements; [%d] appends)", here, last.index, len(p), len(p))
		}
	default:
		return nil, fmt.Errorf("%s: %s is %s, which has no fields", here, orDoc(pathString(parentSteps)), describe(parent))
	}
	nv, err := change(parent, last, here)
	if err != nil {
		return nil, err
	}
	if len(parentSteps) == 0 {
		root = nv
	} else {
		gp, _ := lookup(root, parentSteps[:len(parentSteps)-1])
		ps := parentSteps[len(parentSteps)-1]
		switch g := gp.(type) {
		case *object:
			g.vals[ps.key] = nv
		case []any:
			g[ps.index] = nv
		}
	}
	return Decode(marshalTree(root))
}

func marshalIndent(v any) []byte {
	var b bytes.Buffer
	writeTree(&b, v, "  ", "")
	return b.Bytes()
}

// omittedField returns the Go type at steps when the last step names a
// struct field (not a map key or list element).
func omittedField(steps []step) (reflect.Type, bool) {
	t := reflect.TypeFor[Config]()
	for i, s := range steps {
		switch {
		case s.index >= 0 && t.Kind() == reflect.Slice && i < len(steps)-1:
			t = t.Elem()
		case s.index < 0 && t.Kind() == reflect.Map && i < len(steps)-1:
			t = t.Elem()
		case s.index < 0 && t.Kind() == reflect.Struct:
			f, ok := fieldsOf(t).byName[s.key]
			if !ok {
				return nil, false
			}
			t = f.Type
		default:
			return nil, false
		}
	}
	return t, true
}
