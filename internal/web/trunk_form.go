package web

import (
	"fmt"
	"html/template"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/palisade-sbc/palisade/internal/config"
)

// The trunk settings of a peer (peers[].trunk) are a sub-form of its rows
// on the accounts page: lists as comma lists, number rules as one line of
// "key=value" words per rule, rules separated by ";" (docs/web-admin.md).

// trunkCols are the form columns of the sub-form, in the order of rows().
var trunkCols = []string{"targets", "ranges", "!ka_up", "ka_headers", "ka_down_after", "num_out", "num_in",
	"!user_phone", "!system_roots", "!server_auth", "!offer_required", "offer_codecs", "!history_info", "!own_allow"}

// parseTrunk reads the sub-form of peer i.
func parseTrunk(f *form, row map[string]string, i int) config.PeerTrunk {
	p := func(s string) string { return path("peers[%d].trunk.%s", i, s) }
	t := config.PeerTrunk{
		Targets:     lines(row["targets"]),
		Ranges:      lines(row["ranges"]),
		HistoryInfo: row["history_info"],
		OwnAllow:    row["own_allow"] == "yes",
		Keepalive: config.PeerKeepalive{Up: row["ka_up"], Headers: parseHeaders(f, row["ka_headers"], p("keepalive.headers")),
			DownAfter: f.atoi(row["ka_down_after"], p("keepalive.down_after"))},
		Numbers: config.PeerNumbers{Outbound: parseRules(f, row["num_out"], p("numbers.outbound")),
			Inbound: parseRules(f, row["num_in"], p("numbers.inbound")), UserPhone: row["user_phone"] == "yes"},
		Trust: config.PeerTrust{SystemRoots: row["system_roots"] == "yes", ServerAuthClientCert: row["server_auth"] == "yes"},
		Offer: config.PeerOffer{Required: row["offer_required"] == "yes", Codecs: lines(row["offer_codecs"])},
	}
	return t
}

// parseRules reads number rules written as ruleList writes them:
// "match=00(\d+) replace=+$1; fields=from,pai add_prefix=+". A value with
// a space, ";" or '"' in it is written in double quotes, a '"' in it doubled:
// match="[0-9]+;ext=1".
func parseRules(f *form, s, p string) []config.NumberRule {
	out := []config.NumberRule{}
	rules, err := ruleWords(s)
	if err != nil {
		f.fail(path("%s[%d]", p, len(rules)), "%v", err)
		return out
	}
	for j, words := range rules {
		if len(words) == 0 {
			continue
		}
		var r config.NumberRule
		for _, w := range words {
			k, v := w.key, w.val
			switch {
			case !w.eq:
				f.fail(path("%s[%d]", p, j), "%q: write each part of a rule as key=value (fields, match, replace, strip_prefix, add_prefix)", k)
			case k == "fields":
				r.Fields = lines(v)
			case k == "match":
				r.Match = v
			case k == "replace":
				r.Replace = v
			case k == "strip_prefix":
				r.StripPrefix = v
			case k == "add_prefix":
				r.AddPrefix = v
			default:
				f.fail(path("%s[%d]", p, j), "%q is not a part of a number rule (fields, match, replace, strip_prefix, add_prefix)", k)
			}
		}
		out = append(out, r)
	}
	return out
}

// ruleWord is one key=value word of a number rule (eq false: no "=").
type ruleWord struct {
	key, val string
	eq       bool
}

// ruleWords splits s into rules (at ";") of words. On an error it returns
// the rules read before the broken one.
func ruleWords(s string) ([][]ruleWord, error) {
	rules := [][]ruleWord{nil}
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case unicode.IsSpace(r):
			i += n
			continue
		case r == ';':
			rules = append(rules, nil)
			i++
			continue
		}
		end := i + strings.IndexFunc(s[i:], func(r rune) bool { return r == '=' || r == ';' || unicode.IsSpace(r) })
		if end < i {
			end = len(s)
		}
		key := s[i:end]
		if end == len(s) || s[end] != '=' {
			rules[len(rules)-1] = append(rules[len(rules)-1], ruleWord{key: key})
			i = end
			continue
		}
		i = end + 1
		var val string
		if i < len(s) && s[i] == '"' {
			var b strings.Builder
			for i++; ; i++ {
				if i >= len(s) {
					return rules[:len(rules)-1], fmt.Errorf("%s=: the quoted value has no closing \"", key)
				}
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						b.WriteByte('"')
						i++
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
			}
			if next, _ := utf8.DecodeRuneInString(s[i:]); i < len(s) && next != ';' && !unicode.IsSpace(next) {
				return rules[:len(rules)-1], fmt.Errorf("%s=: put a space or \";\" after the closing \"", key)
			}
			val = b.String()
		} else {
			end := i + strings.IndexFunc(s[i:], func(r rune) bool { return r == ';' || unicode.IsSpace(r) })
			if end < i {
				end = len(s)
			}
			val, i = s[i:end], end
		}
		rules[len(rules)-1] = append(rules[len(rules)-1], ruleWord{key, val, true})
	}
	return rules, nil
}

// ruleValue writes v so that ruleWords reads it back as v.
func ruleValue(v string) string {
	if strings.IndexFunc(v, unicode.IsSpace) < 0 && !strings.ContainsAny(v, `;"`) {
		return v
	}
	return `"` + strings.ReplaceAll(v, `"`, `""`) + `"`
}

// ruleList shows number rules in the form parseRules reads.
func ruleList(rs []config.NumberRule) string {
	var out []string
	for _, r := range rs {
		var w []string
		if len(r.Fields) > 0 {
			w = append(w, "fields="+ruleValue(strings.Join(r.Fields, ",")))
		}
		for _, kv := range [][2]string{{"match", r.Match}, {"replace", r.Replace}, {"strip_prefix", r.StripPrefix}, {"add_prefix", r.AddPrefix}} {
			if kv[1] != "" {
				w = append(w, kv[0]+"="+ruleValue(kv[1]))
			}
		}
		out = append(out, strings.Join(w, " "))
	}
	return strings.Join(out, "; ")
}

// ErrUnder shows the errors of the field at path and of every element or
// member of it (a list's items are checked one by one) next to the field
// that edits the whole list.
func (v *view) ErrUnder(p string) template.HTML {
	var msgs []string
	for _, e := range v.Errors {
		if e.Path == p || strings.HasPrefix(e.Path, p+"[") || strings.HasPrefix(e.Path, p+".") {
			msgs = append(msgs, e.Message)
		}
	}
	if len(msgs) == 0 {
		return ""
	}
	return template.HTML(`<span class="ferr" data-path="` + template.HTMLEscapeString(p) + `">` +
		template.HTMLEscapeString(strings.Join(msgs, "; ")) + `</span>`)
}

func init() {
	funcs["ruleList"] = ruleList
	funcs["defaultOptions"] = defaultOptions
	funcs["unsetOptions"] = unsetOptions
	// ifaceReq is the media requirement a peer on iface inherits.
	funcs["ifaceReq"] = func(c *config.Config, iface string) string { _, r, _ := c.MediaPolicyOf(iface); return r }
	// peerPolicies lists the peers with a media policy of their own.
	funcs["peerPolicies"] = func(c *config.Config) []string {
		var out []string
		for _, p := range c.Peers {
			if p.Media.Set() {
				g, r := c.PeerMediaPolicy(p)
				out = append(out, p.Name+" ("+r+", group "+g+")")
			}
		}
		return out
	}
	funcs["noTrunk"] = func() config.PeerTrunk { return config.PeerTrunk{} }
	funcs["trunkSet"] = func(t config.PeerTrunk) bool { return !t.IsZero() }
	funcs["trunkView"] = func(v *view, t config.PeerTrunk, i int) trunkView { return trunkView{V: v, T: t, I: i} }
}

// defaultOptions are options whose "" choice reads as the default it means.
func defaultOptions(def string, l []string, cur string) template.HTML {
	e := template.HTMLEscapeString(def)
	return template.HTML(strings.NewReplacer(`value=""></option>`, `value="">`+e+`</option>`,
		`value="" selected></option>`, `value="" selected>`+e+`</option>`).Replace(string(options(l, cur))))
}

// unsetOptions are the options of a field whose "" means def: when it is
// "", the def choice keeps it "" (an unchanged save changes nothing).
func unsetOptions(def string, l []string, cur string) template.HTML {
	if cur != "" {
		return options(l, cur)
	}
	m := make([]string, len(l))
	for i, o := range l {
		if o != def {
			m[i] = o
		}
	}
	return defaultOptions(def, m, "")
}

// trunkView is what the "trunk" template gets: the page, the peer's trunk
// settings and its index (-1 in the template of a new row).
type trunkView struct {
	V *view
	T config.PeerTrunk
	I int
}

func (t trunkView) Path(s string) string { return path("peers[%d].trunk.%s", t.I, s) }
