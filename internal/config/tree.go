package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The configuration is also handled as a generic JSON tree: strict decoding
// needs to see which members a document has (to report unknown fields with
// their paths and to fill missing sections from the defaults), and get/set by
// path and diff work on members, not on Go fields. Objects keep their member
// order so that paths and diffs follow the document.

// object is a JSON object with its member order.
type object struct {
	keys []string
	vals map[string]any
}

func newObject() *object { return &object{vals: map[string]any{}} }

func (o *object) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *object) remove(k string) {
	if _, ok := o.vals[k]; !ok {
		return
	}
	delete(o.vals, k)
	for i, kk := range o.keys {
		if kk == k {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			break
		}
	}
}

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 64

// parseTree parses one JSON value: *object, []any, string, json.Number, bool
// or nil. Trailing data after the value is an error; so is a member that
// appears twice in one object (encoding/json would silently keep the last).
func parseTree(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseValue(dec, "", 0)
	if err != nil {
		return nil, syntaxError(data, dec, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, syntaxError(data, dec, errors.New("unexpected data after the document"))
	}
	return v, nil
}

func parseValue(dec *json.Decoder, path string, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested more than %d levels deep", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := newObject()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is not a string")
				}
				kp := joinKey(path, k)
				if _, dup := o.vals[k]; dup {
					return nil, FieldError{Path: kp, Message: "appears twice"}
				}
				v, err := parseValue(dec, kp, depth+1)
				if err != nil {
					return nil, err
				}
				o.set(k, v)
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			return o, nil
		case '[':
			a := []any{}
			for dec.More() {
				v, err := parseValue(dec, joinIndex(path, len(a)), depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return a, nil
		}
		return nil, fmt.Errorf("unexpected %q", t)
	default:
		return tok, nil // string, json.Number, bool, nil
	}
}

// syntaxError turns a decoder error into a FieldError; syntax problems get
// the line and column where they were found.
func syntaxError(data []byte, dec *json.Decoder, err error) error {
	var fe FieldError
	if errors.As(err, &fe) {
		return Errors{fe}
	}
	off := dec.InputOffset()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
	msg := err.Error()
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		msg = "the document ends too early"
	}
	msg = strings.TrimPrefix(msg, "json: ")
	return Errors{{Path: "(document)", Message: fmt.Sprintf("line %d, column %d: %s", line, col, msg)}}
}

// writeTree writes v as JSON: compact when indent is "", else indented.
func writeTree(b *bytes.Buffer, v any, indent, prefix string) {
	nl := func(p string) {
		if indent != "" {
			b.WriteByte('\n')
			b.WriteString(p)
		}
	}
	switch t := v.(type) {
	case *object:
		if len(t.keys) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteByte('{')
		for i, k := range t.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(prefix + indent)
			writeString(b, k)
			b.WriteByte(':')
			if indent != "" {
				b.WriteByte(' ')
			}
			writeTree(b, t.vals[k], indent, prefix+indent)
		}
		nl(prefix)
		b.WriteByte('}')
	case []any:
		if len(t) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(prefix + indent)
			writeTree(b, e, indent, prefix+indent)
		}
		nl(prefix)
		b.WriteByte(']')
	case string:
		writeString(b, t)
	case json.Number:
		b.WriteString(string(t))
	case bool:
		b.WriteString(strconv.FormatBool(t))
	case nil:
		b.WriteString("null")
	default:
		panic(fmt.Sprintf("config: unexpected tree node %T", v))
	}
}

func writeString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	b.Truncate(b.Len() - 1) // Encode adds a newline
}

func marshalTree(v any) []byte {
	var b bytes.Buffer
	writeTree(&b, v, "", "")
	return b.Bytes()
}

// joinKey appends an object member to a path: "sip" + "listeners" =
// "sip.listeners"; keys that are not plain names are quoted: headers["X-A B"].
func joinKey(path, k string) string {
	if !plainKey(k) {
		return path + "[" + strconv.Quote(k) + "]"
	}
	if path == "" {
		return k
	}
	return path + "." + k
}

func joinIndex(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// describe names the JSON type of a tree value for error messages.
func describe(v any) string {
	switch t := v.(type) {
	case *object:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "the string " + short(strconv.Quote(t))
	case json.Number:
		return "the number " + short(string(t))
	case bool:
		return strconv.FormatBool(t)
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func short(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
