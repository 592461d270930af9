package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// MaxDocumentSize bounds what Decode accepts; a real configuration is a few
// tens of kilobytes.
const MaxDocumentSize = 8 << 20

// Decode reads a configuration document strictly:
//   - a member that is not a field of the document is an error naming its path
//     (names are case-sensitive, unlike plain encoding/json);
//   - a value of the wrong JSON type is an error naming its path;
//   - a member given twice is an error;
//   - a missing or null object member takes its value from Default(), at any
//     depth of the sections (so a document with only "peers" is the default
//     unit plus those peers); list elements are never filled from defaults:
//     a list given in the document is taken as it is, and a missing member
//     inside a list element is the zero value of its type.
//
// Every problem found is returned together, as Errors. A document that
// decodes is not validated (call Validate); one that does not decode is, as
// far as it can be, and those problems are part of the Errors, so that the
// administrator sees everything at once.
func Decode(data []byte) (*Config, error) {
	if len(data) > MaxDocumentSize {
		return nil, Errors{{Path: "(document)", Message: fmt.Sprintf("is %d bytes; the limit is %d", len(data), MaxDocumentSize)}}
	}
	tree, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	if _, ok := tree.(*object); !ok {
		return nil, Errors{{Path: "(document)", Message: "must be a JSON object, not " + describe(tree)}}
	}
	var errs Errors
	tree = checkTree(tree, reflect.TypeFor[Config](), "", &errs)
	merged := mergeDefaults(defaultTree(), tree)
	var cfg Config
	if err := json.Unmarshal(marshalTree(merged), &cfg); err != nil {
		// checkTree accepted or repaired the types, so this should not happen.
		return nil, append(errs, FieldError{Path: "(document)", Message: err.Error()})
	}
	normalize(reflect.ValueOf(&cfg).Elem())
	if len(errs) > 0 {
		// Report the document's other problems too, so that one round of
		// fixing is enough; problems inside a repaired value are artefacts
		// of the repair and left out.
		for _, ve := range cfg.Validate() {
			artefact := false
			for _, e := range errs {
				artefact = artefact || under(ve.Path, e.Path)
			}
			if !artefact {
				errs = append(errs, ve)
			}
		}
		return nil, errs
	}
	return &cfg, nil
}

// Encode writes the document indented, with every field in declaration
// order and empty lists as [] (never null), ending in a newline. The same
// configuration always encodes to the same bytes.
func Encode(cfg *Config) ([]byte, error) {
	c, err := Clone(cfg)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	return b.Bytes(), nil
}

// Clone returns a deep copy of cfg with nil lists made empty.
func Clone(cfg *Config) (*Config, error) {
	if cfg == nil {
		return nil, fmt.Errorf("config: nil configuration")
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("config: copy: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("config: copy: %w", err)
	}
	normalize(reflect.ValueOf(&c).Elem())
	return &c, nil
}

// Equal reports whether a and b encode to the same document.
func Equal(a, b *Config) bool {
	ea, err1 := Encode(a)
	eb, err2 := Encode(b)
	return err1 == nil && err2 == nil && bytes.Equal(ea, eb)
}

var (
	defaultOnce sync.Once
	defaultRoot any // parsed once: parsing it again took 40% of every Decode
)

// defaultTree is a fresh tree of Default() (callers may change it).
func defaultTree() any {
	defaultOnce.Do(func() {
		b, err := json.Marshal(Default())
		if err != nil {
			panic(err)
		}
		if defaultRoot, err = parseTree(b); err != nil {
			panic(err)
		}
	})
	return cloneTree(defaultRoot)
}

// cloneTree deep-copies the objects and lists of a tree (the scalars are
// immutable and shared).
func cloneTree(v any) any {
	switch t := v.(type) {
	case *object:
		o := &object{keys: append([]string(nil), t.keys...), vals: make(map[string]any, len(t.vals))}
		for k, x := range t.vals {
			o.vals[k] = cloneTree(x)
		}
		return o
	case []any:
		l := make([]any, len(t))
		for i, x := range t {
			l[i] = cloneTree(x)
		}
		return l
	}
	return v
}

// mergeDefaults returns doc with every missing or null object member taken
// from def, recursively through objects (not through lists).
func mergeDefaults(def, doc any) any {
	if doc == nil {
		return def
	}
	do, ok1 := doc.(*object)
	dd, ok2 := def.(*object)
	if !ok1 || !ok2 {
		return doc
	}
	for _, k := range dd.keys {
		v, ok := do.vals[k]
		if !ok || v == nil {
			do.set(k, dd.vals[k])
			continue
		}
		do.vals[k] = mergeDefaults(dd.vals[k], v)
	}
	return do
}

// jsonFields maps the JSON names of a struct type to its fields, in order.
type jsonFields struct {
	names  []string
	byName map[string]reflect.StructField
}

var fieldCache sync.Map // reflect.Type → *jsonFields

func fieldsOf(t reflect.Type) *jsonFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*jsonFields)
	}
	f := &jsonFields{byName: map[string]reflect.StructField{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f.names = append(f.names, name)
		f.byName[name] = sf
	}
	fieldCache.Store(t, f)
	return f
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// checkTree compares a tree with the Go type it will decode into and
// records unknown members and wrong JSON types, with their paths. A null is
// accepted anywhere (it means "default" or "empty"). It returns the tree
// repaired so that it decodes: unknown members removed, wrong values
// replaced by null (object members, which then take their default) or by
// the zero value (list elements, so that later indices keep their paths).
func checkTree(v any, t reflect.Type, path string, errs *Errors) (fixed any) {
	if v == nil {
		return nil
	}
	bad := func(msg string) any {
		*errs = append(*errs, FieldError{Path: path, Message: msg})
		return nil
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		switch v.(type) {
		case string, json.Number:
			u := reflect.New(t).Interface().(json.Unmarshaler)
			if err := u.UnmarshalJSON(marshalTree(v)); err != nil {
				return bad(err.Error())
			}
			return v
		}
		return bad("expected a duration such as \"60s\", got " + describe(v))
	}
	switch t.Kind() {
	case reflect.Struct:
		o, ok := v.(*object)
		if !ok {
			return bad("expected an object, got " + describe(v))
		}
		fields := fieldsOf(t)
		for _, k := range append([]string(nil), o.keys...) {
			sf, ok := fields.byName[k]
			if !ok {
				msg := "unknown field"
				if s := suggest(k, fields.names); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				*errs = append(*errs, FieldError{Path: joinKey(path, k), Message: msg})
				o.remove(k)
				continue
			}
			o.vals[k] = checkTree(o.vals[k], sf.Type, joinKey(path, k), errs)
		}
		return o
	case reflect.Slice:
		a, ok := v.([]any)
		if !ok {
			return bad("expected a list, got " + describe(v))
		}
		for i, e := range a {
			if e == nil {
				*errs = append(*errs, FieldError{Path: joinIndex(path, i), Message: "a list element cannot be null"})
			} else if f := checkTree(e, t.Elem(), joinIndex(path, i), errs); f != nil {
				a[i] = f
				continue
			}
			a[i] = zeroTree(t.Elem())
		}
		return a
	case reflect.Map:
		o, ok := v.(*object)
		if !ok {
			return bad("expected an object, got " + describe(v))
		}
		for _, k := range o.keys {
			if f := checkTree(o.vals[k], t.Elem(), joinKey(path, k), errs); f != nil {
				o.vals[k] = f
			} else {
				o.vals[k] = zeroTree(t.Elem())
			}
		}
		return o
	case reflect.String:
		if _, ok := v.(string); !ok {
			return bad("expected a string, got " + describe(v))
		}
		return v
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return bad("expected true or false, got " + describe(v))
		}
		return v
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, ok := v.(json.Number)
		if !ok {
			return bad("expected a number, got " + describe(v))
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			if _, ferr := strconv.ParseFloat(string(n), 64); ferr == nil && !strings.ContainsAny(string(n), ".eE") {
				return bad(string(n) + " is too large")
			} else if ferr == nil {
				return bad(short(string(n)) + " is not a whole number")
			}
			return bad(short(string(n)) + " is not a number")
		}
		return v
	}
	return bad(fmt.Sprintf("unsupported field type %s", t))
}

// zeroTree is the tree of the zero value of t.
func zeroTree(t reflect.Type) any {
	b, err := json.Marshal(reflect.Zero(t).Interface())
	if err != nil {
		return nil
	}
	v, _ := parseTree(b)
	return v
}

// under reports whether path is p or inside it.
func under(path, p string) bool {
	return path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[")
}

// suggest returns the known name that k most likely meant: the same name in
// another case or with "-" for "_", or else the one name within two typing
// mistakes (edit distance) of it.
func suggest(k string, names []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	for _, n := range names {
		if norm(n) == norm(k) {
			return n
		}
	}
	best, found := "", 0
	for _, n := range names {
		if editDistance(norm(k), n) <= 2 {
			best = n
			found++
		}
	}
	if found == 1 {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance of two short names.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// normalize replaces nil lists with empty ones, so that a document always
// encodes lists as [] and two equal configurations encode identically.
func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				normalize(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		}
		for i := range v.Len() {
			normalize(v.Index(i))
		}
	case reflect.Map:
		if v.Len() == 0 && !v.IsNil() {
			v.Set(reflect.Zero(v.Type())) // empty map = no headers (omitted)
		}
	}
}

// sortedKeys is used where map order must not leak into output.
func sortedKeys[M ~map[string]V, V any](m M) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
