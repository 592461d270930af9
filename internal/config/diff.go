package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Change is one difference between two configurations. Old is nil when the
// value was added, New is nil when it was removed.
type Change struct {
	Path string          `json:"path"`
	Old  json.RawMessage `json:"old,omitempty"`
	New  json.RawMessage `json:"new,omitempty"`
}

// String renders a change on one line: "sip.listeners[0].port: 5060 → 5070".
func (c Change) String() string {
	switch {
	case c.Old == nil:
		return fmt.Sprintf("%s: added %s", c.Path, c.New)
	case c.New == nil:
		return fmt.Sprintf("%s: removed %s", c.Path, c.Old)
	}
	return fmt.Sprintf("%s: %s → %s", c.Path, c.Old, c.New)
}

// Diff lists the values that differ between a and b, in document order, as
// deep as they differ: lists are compared element by element (a longer list
// shows added elements, a shorter one removed elements).
func Diff(a, b *Config) ([]Change, error) {
	ta, err := configTree(a)
	if err != nil {
		return nil, err
	}
	tb, err := configTree(b)
	if err != nil {
		return nil, err
	}
	var out []Change
	diffTree("", ta, tb, &out)
	return out, nil
}

func diffTree(path string, a, b any, out *[]Change) {
	switch ta := a.(type) {
	case *object:
		if tb, ok := b.(*object); ok {
			for _, k := range ta.keys {
				vb, ok := tb.vals[k]
				if !ok {
					*out = append(*out, Change{Path: joinKey(path, k), Old: marshalTree(ta.vals[k])})
					continue
				}
				diffTree(joinKey(path, k), ta.vals[k], vb, out)
			}
			for _, k := range tb.keys {
				if _, ok := ta.vals[k]; !ok {
					*out = append(*out, Change{Path: joinKey(path, k), New: marshalTree(tb.vals[k])})
				}
			}
			return
		}
	case []any:
		if tb, ok := b.([]any); ok {
			for i := range max(len(ta), len(tb)) {
				switch {
				case i >= len(tb):
					*out = append(*out, Change{Path: joinIndex(path, i), Old: marshalTree(ta[i])})
				case i >= len(ta):
					*out = append(*out, Change{Path: joinIndex(path, i), New: marshalTree(tb[i])})
				default:
					diffTree(joinIndex(path, i), ta[i], tb[i], out)
				}
			}
			return
		}
	}
	ma, mb := marshalTree(a), marshalTree(b)
	if !bytes.Equal(ma, mb) {
		*out = append(*out, Change{Path: orDoc(path), Old: ma, New: mb})
	}
}

// FormatChanges renders changes one per line (see Change.String).
func FormatChanges(cs []Change) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// UnifiedDiff renders the difference of the two documents as encoded by
// Encode in unified diff format ("--- nameA", "+++ nameB", @@ hunks with 3
// lines of context), for `palisade config diff`. Equal documents give "".
func UnifiedDiff(nameA, nameB string, a, b *Config) (string, error) {
	ea, err := Encode(a)
	if err != nil {
		return "", err
	}
	eb, err := Encode(b)
	if err != nil {
		return "", err
	}
	return unified(nameA, nameB, splitLines(ea), splitLines(eb)), nil
}

func splitLines(b []byte) []string {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// edit operations of a line diff
type lineOp struct {
	kind byte // ' ', '-', '+'
	text string
}

// lineDiff computes a shortest edit script by longest common subsequence on
// the part between the common prefix and suffix (configuration changes are
// local, so that part is small). A huge middle is shown as replaced whole
// rather than spending quadratic memory on it.
func lineDiff(a, b []string) []lineOp {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var ops []lineOp
	for _, l := range a[:pre] {
		ops = append(ops, lineOp{' ', l})
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	if len(ma)*len(mb) > 4_000_000 {
		for _, l := range ma {
			ops = append(ops, lineOp{'-', l})
		}
		for _, l := range mb {
			ops = append(ops, lineOp{'+', l})
		}
	} else {
		// lcs[i][j] = length of the LCS of ma[i:] and mb[j:]
		lcs := make([][]int32, len(ma)+1)
		for i := range lcs {
			lcs[i] = make([]int32, len(mb)+1)
		}
		for i := len(ma) - 1; i >= 0; i-- {
			for j := len(mb) - 1; j >= 0; j-- {
				if ma[i] == mb[j] {
					lcs[i][j] = lcs[i+1][j+1] + 1
				} else {
					lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
				}
			}
		}
		i, j := 0, 0
		for i < len(ma) || j < len(mb) {
			switch {
			case i < len(ma) && j < len(mb) && ma[i] == mb[j]:
				ops = append(ops, lineOp{' ', ma[i]})
				i++
				j++
			case i < len(ma) && (j == len(mb) || lcs[i+1][j] >= lcs[i][j+1]):
				ops = append(ops, lineOp{'-', ma[i]})
				i++
			default:
				ops = append(ops, lineOp{'+', mb[j]})
				j++
			}
		}
	}
	for _, l := range a[len(a)-suf:] {
		ops = append(ops, lineOp{' ', l})
	}
	return ops
}

func unified(nameA, nameB string, a, b []string) string {
	ops := lineDiff(a, b)
	const ctx = 3
	var out strings.Builder
	changed := false
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		// A hunk starts ctx lines before the change and runs until more than
		// 2*ctx equal lines follow a change.
		start := max(0, i-ctx)
		end := i
		for k := i; k < len(ops); k++ {
			if ops[k].kind != ' ' {
				end = k
			} else if k-end > 2*ctx {
				break
			}
		}
		stop := min(len(ops), end+ctx+1)
		if !changed {
			fmt.Fprintf(&out, "--- %s\n+++ %s\n", nameA, nameB)
			changed = true
		}
		// line numbers of the hunk in a and b
		la, lb := 1, 1
		for _, op := range ops[:start] {
			if op.kind != '+' {
				la++
			}
			if op.kind != '-' {
				lb++
			}
		}
		na, nb := 0, 0
		for _, op := range ops[start:stop] {
			if op.kind != '+' {
				na++
			}
			if op.kind != '-' {
				nb++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(la, na), hunkRange(lb, nb))
		for _, op := range ops[start:stop] {
			out.WriteByte(op.kind)
			out.WriteString(op.text)
			out.WriteByte('\n')
		}
		i = stop
	}
	return out.String()
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start-1)
	}
	if n == 1 {
		return fmt.Sprintf("%d", start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}
