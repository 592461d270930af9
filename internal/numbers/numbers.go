// Package numbers rewrites the telephone numbers of SIP requests on their
// way to or from a peer: the user part of the Request-URI, To, From and
// P-Asserted-Identity, by rules a peer's configuration lists (prefix strip
// and add, regular expressions). A trunk or cloud service wants its own
// number format: Teams Direct Routing, for one, reads numbers in E.164 with
// the leading "+" ("Direct Routing - SIP protocol": the Request-URI and To
// of a call to Teams carry "+<number>").
//
// The package does not import config: config.NumberRule has the same
// fields with JSON names and converts with numbers.Rule(r), so that config
// validation can use Check.
package numbers

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
)

// The fields a rule may apply to.
const (
	RequestURI = "request_uri"
	To         = "to"
	From       = "from"
	PAI        = "pai" // P-Asserted-Identity
)

// Fields lists the field names in the order they are documented.
var Fields = []string{RequestURI, To, From, PAI}

// Rule is one step of a normalisation. A rule applies to a number when
// Match (a whole-number RE2 expression) matches it, or always when Match is
// empty; then, in this order, Replace rewrites the number from Match's
// groups, StripPrefix is removed when the number starts with it, and
// AddPrefix is put in front.
type Rule struct {
	Fields      []string // RequestURI, To, From, PAI; empty = all four
	Match       string   // "" = every number
	Replace     string   // "$1", "${2}" refer to Match's groups; needs Match
	StripPrefix string
	AddPrefix   string
}

// ErrEmpty is wrapped by Check when a rule could turn a number into an
// empty one (which no peer accepts and the unit could not send).
var ErrEmpty = errors.New("can make an empty number")

// groupRef finds $n and ${n} in a replacement (the dial plan's syntax).
var groupRef = regexp.MustCompile(`\$(\d+)|\$\{(\d+)\}`)

type compiled struct {
	fields  map[string]bool // nil = all
	match   *regexp.Regexp  // anchored; nil = all
	replace string
	strip   string
	add     string
}

// Set is a compiled list of rules, applied in order: each rule that
// matches rewrites the result of the ones before it.
type Set struct {
	rules []compiled
	// UserPhone adds user=phone to SIP URIs whose user part is a telephone
	// number (RFC 3261 §19.1.1) when URI is called.
	UserPhone bool
}

// Compile checks every rule (Check) and returns the set; the error names
// the first bad rule by index.
func Compile(rules []Rule, userPhone bool) (*Set, error) {
	s := &Set{UserPhone: userPhone}
	for i, r := range rules {
		c, err := compile(r)
		if err != nil {
			return nil, fmt.Errorf("rule %d: %w", i, err)
		}
		s.rules = append(s.rules, c)
	}
	return s, nil
}

// Check reports what is wrong with r, or nil: an unknown field, a bad
// expression, a replacement without Match or naming a group Match lacks,
// characters a number cannot hold, and a rule that could leave a number
// empty (wrapping ErrEmpty).
func Check(r Rule) error {
	_, err := compile(r)
	return err
}

func compile(r Rule) (compiled, error) {
	c := compiled{replace: r.Replace, strip: r.StripPrefix, add: r.AddPrefix}
	for _, f := range r.Fields {
		if !contains(Fields, f) {
			return c, fmt.Errorf("field %q is not one of %s", f, strings.Join(Fields, ", "))
		}
		if c.fields == nil {
			c.fields = map[string]bool{}
		}
		c.fields[f] = true
	}
	for _, p := range []struct{ name, v string }{{"strip_prefix", r.StripPrefix}, {"add_prefix", r.AddPrefix}} {
		if !userChars(p.v) {
			return c, fmt.Errorf("%s %q may hold only digits, letters and + * # . _ -", p.name, p.v)
		}
	}
	var tree *syntax.Regexp
	if r.Match != "" {
		re, err := regexp.Compile(`^(?:` + r.Match + `)$`)
		if err != nil {
			return c, fmt.Errorf("match: %w", err)
		}
		c.match = re
		if tree, err = syntax.Parse(`(?:`+r.Match+`)`, syntax.Perl); err != nil {
			return c, fmt.Errorf("match: %w", err)
		}
	}
	// The shortest number the rule can produce from a number of at least
	// one character that passes Match.
	min := 1
	if tree != nil {
		min = max(1, minLen(tree))
	}
	if r.Replace != "" {
		if c.match == nil {
			return c, errors.New("replace needs match: its $1, $2 … are match's groups")
		}
		n := c.match.NumSubexp()
		min = 0
		lit := groupRef.ReplaceAllStringFunc(r.Replace, func(ref string) string {
			g, _ := strconv.Atoi(strings.Trim(ref, "${}"))
			if g > n {
				n = -1 // reported below
				return ""
			}
			min += groupMinLen(tree, g)
			return ""
		})
		if n < 0 {
			return c, fmt.Errorf("replace %q names a group that match %q lacks", r.Replace, r.Match)
		}
		if !userChars(lit) {
			return c, fmt.Errorf("replace %q may hold only digits, letters, + * # . _ - and group references", r.Replace)
		}
		min += len(lit)
	}
	if r.StripPrefix != "" {
		min = max(0, min-len(r.StripPrefix))
	}
	min += len(r.AddPrefix)
	if min == 0 {
		return c, fmt.Errorf("%w: add a match that requires digits after the stripped part, or an add_prefix", ErrEmpty)
	}
	return c, nil
}

// Number applies the set to the number of field and returns the result.
// Parameters after ';' in a user part (RFC 3966 ";phone-context=…") are
// kept as they are; a number the rules would empty stays unchanged (Check
// refuses such rules; this is the last guard).
func (s *Set) Number(field, user string) string {
	if s == nil || len(s.rules) == 0 || user == "" {
		return user
	}
	num, params, _ := strings.Cut(user, ";")
	out := num
	for _, r := range s.rules {
		if out == "" || r.fields != nil && !r.fields[field] {
			continue
		}
		if n, ok := r.apply(out); ok && n != "" {
			out = n
		}
	}
	if params != "" {
		return out + ";" + params
	}
	return out
}

// apply runs one rule on a number; false when Match does not match.
func (r *compiled) apply(n string) (string, bool) {
	if r.match != nil && !r.match.MatchString(n) {
		return n, false
	}
	if r.replace != "" {
		n = expand(r.match, r.replace, n)
	}
	return r.add + strings.TrimPrefix(n, r.strip), true
}

// expand builds the replacement from the groups of re's match of s.
func expand(re *regexp.Regexp, tmpl, s string) string {
	m := re.FindStringSubmatch(s)
	return groupRef.ReplaceAllStringFunc(tmpl, func(ref string) string {
		g, _ := strconv.Atoi(strings.Trim(ref, "${}"))
		if g < len(m) {
			return m[g]
		}
		return ""
	})
}

// IsPhoneNumber reports whether user is a telephone number in the sense of
// RFC 3966's global or local number: an optional "+", then digits and the
// visual separators - . ( ), at least one digit, optional ;parameters.
func IsPhoneNumber(user string) bool {
	num, _, _ := strings.Cut(user, ";")
	num = strings.TrimPrefix(num, "+")
	digits := 0
	for _, c := range num {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case strings.ContainsRune("-.()*#", c):
		default:
			return false
		}
	}
	return digits > 0
}

// IsE164 reports whether user is "+" and 1 to 15 digits (ITU-T E.164),
// optionally followed by ;parameters.
func IsE164(user string) bool {
	num, _, _ := strings.Cut(user, ";")
	if len(num) < 2 || len(num) > 16 || num[0] != '+' {
		return false
	}
	for _, c := range num[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func userChars(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.ContainsRune("+*#._-", c)) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
