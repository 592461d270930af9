package web

import (
	"bufio"
	"html/template"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/palisade-sbc/palisade/docs"
)

// Help next to the configuration fields comes from docs/configuration.md
// (embedded), one entry per field row of its tables, keyed by the field's
// path with list indices left out: "network.interfaces[].fqdn",
// "peers[].auth.username", "tls.min_version".

// fieldDoc is one documented field.
type fieldDoc struct {
	Key     string
	Type    string
	Default string
	Meaning string // plain text
	Anchor  string // id of its section on the help page
}

var (
	helpOnce sync.Once
	helpDocs map[string]fieldDoc
)

var (
	sectionRE = regexp.MustCompile("^#{2,4} `([^`]+)`")
	rowRE     = regexp.MustCompile("^\\| `([^`]+)` \\|([^|]*)\\|([^|]*)\\|(.*)\\|\\s*$")
	linkRE    = regexp.MustCompile(`\[([^\]]+)\]\([^)]+\)`)
)

// parseFieldDocs reads the field tables of the configuration reference.
func parseFieldDocs(md string) map[string]fieldDoc {
	out := map[string]fieldDoc{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(md))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			section = ""
			if m := sectionRE.FindStringSubmatch(line); m != nil {
				section = m[1]
			}
			continue
		}
		m := rowRE.FindStringSubmatch(line)
		if m == nil || section == "" {
			continue
		}
		key := section + "." + m[1]
		if section == m[1] { // "## `schema`" documents the top-level field itself
			key = m[1]
		}
		out[key] = fieldDoc{Key: key, Type: plain(m[2]), Default: plain(m[3]), Meaning: plain(m[4]), Anchor: anchorOf(section)}
	}
	return out
}

// plain turns a table cell's markdown into text.
func plain(s string) string {
	s = linkRE.ReplaceAllString(strings.TrimSpace(s), "$1")
	s = strings.ReplaceAll(s, "`", "")
	s = strings.ReplaceAll(s, "**", "")
	s = strings.ReplaceAll(s, "*", "")
	return strings.ReplaceAll(s, `\|`, "|")
}

func anchorOf(section string) string {
	r := strings.NewReplacer("[]", "", ".", "-")
	return "cfg-" + r.Replace(section)
}

func fieldDocs() map[string]fieldDoc {
	helpOnce.Do(func() { helpDocs = parseFieldDocs(docs.Configuration) })
	return helpDocs
}

// helpUsed records the keys the templates asked for (the test compares them
// with the reference). Keys not in the reference render a visible marker.
var (
	helpUsedMu sync.Mutex
	helpUsed   = map[string]bool{}
)

func lookupHelp(keys []string) (text, anchor string, ok bool) {
	var parts []string
	for _, k := range keys {
		helpUsedMu.Lock()
		helpUsed[k] = true
		helpUsedMu.Unlock()
		d, found := fieldDocs()[k]
		if !found {
			return "", "", false
		}
		m := d.Meaning
		if d.Default != "" && d.Default != "—" && d.Default != `""` {
			m += " Default: " + d.Default + "."
		}
		if len(keys) > 1 {
			m = lastPart(k) + ": " + m
		}
		parts = append(parts, m)
		if anchor == "" {
			anchor = d.Anchor
		}
	}
	return strings.Join(parts, " "), anchor, true
}

func lastPart(k string) string { return k[strings.LastIndex(k, ".")+1:] }

// help is the help shown under a field of a form (a label in .fields).
func help(keys ...string) template.HTML {
	text, anchor, ok := lookupHelp(keys)
	if !ok {
		return template.HTML(`<small class="help missing" data-help="` + template.HTMLEscapeString(strings.Join(keys, " ")) + `">no help</small>`)
	}
	return template.HTML(`<small class="help" data-help="` + template.HTMLEscapeString(strings.Join(keys, " ")) + `">` +
		template.HTMLEscapeString(text) + ` <a href="/help/configuration#` + anchor + `" target="_blank" rel="noopener">Reference</a></small>`)
}

// thelp is the help of a table column: a "?" in the header that opens it.
func thelp(keys ...string) template.HTML {
	text, anchor, ok := lookupHelp(keys)
	if !ok {
		return template.HTML(`<span class="qhelp missing" data-help="` + template.HTMLEscapeString(strings.Join(keys, " ")) + `">no help</span>`)
	}
	e := template.HTMLEscapeString(text)
	return template.HTML(`<details class="qhelp" data-help="` + template.HTMLEscapeString(strings.Join(keys, " ")) + `"><summary title="` + e + `" aria-label="Help">?</summary><div class="pop">` +
		e + ` <a href="/help/configuration#` + anchor + `" target="_blank" rel="noopener">Reference</a></div></details>`)
}

func init() {
	funcs["help"] = help
	funcs["thelp"] = thelp
}

// helpPage shows the configuration reference in the web admin (the links
// next to the fields lead here), rendered from the same embedded document.
func (s *server) helpPage(w http.ResponseWriter, r *http.Request) {
	v := s.newView(r.Context(), r, "Configuration reference")
	v.Data = markdownHTML(docs.Configuration)
	s.render(w, http.StatusOK, "help", v)
}

var codeRE = regexp.MustCompile("`([^`]+)`")

// inline renders the inline markdown the reference uses: code and links.
func inline(s string) string {
	s = template.HTMLEscapeString(s)
	s = codeRE.ReplaceAllString(s, "<code>$1</code>")
	return linkRE.ReplaceAllString(s, "$1")
}

// markdownHTML renders the reference's subset of markdown: headings (with
// ids for the field sections), tables, lists, code blocks and paragraphs.
func markdownHTML(md string) template.HTML {
	var b strings.Builder
	inTable, inCode, inList := false, false, false
	closeBlocks := func() {
		if inTable {
			b.WriteString("</tbody></table></div>\n")
			inTable = false
		}
		if inList {
			b.WriteString("</ul>\n")
			inList = false
		}
	}
	for _, line := range strings.Split(md, "\n") {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "```"):
			closeBlocks()
			if inCode {
				b.WriteString("</pre>\n")
			} else {
				b.WriteString(`<pre class="pem">`)
			}
			inCode = !inCode
		case inCode:
			b.WriteString(template.HTMLEscapeString(line) + "\n")
		case strings.HasPrefix(t, "#"):
			closeBlocks()
			level := len(t) - len(strings.TrimLeft(t, "#"))
			level = min(level+1, 4)
			id := ""
			if m := sectionRE.FindStringSubmatch(t); m != nil {
				id = ` id="` + anchorOf(m[1]) + `"`
			}
			h := string(rune('0' + level))
			b.WriteString("<h" + h + id + ">" + inline(strings.TrimSpace(strings.TrimLeft(t, "#"))) + "</h" + h + ">\n")
		case strings.HasPrefix(t, "|"):
			cells := strings.Split(strings.Trim(t, "|"), "|")
			if strings.HasPrefix(strings.TrimSpace(cells[0]), "---") {
				continue
			}
			tag := "td"
			if !inTable {
				closeBlocks()
				b.WriteString(`<div class="scroll"><table class="grid"><tbody>`)
				inTable, tag = true, "th"
			}
			b.WriteString("<tr>")
			for _, c := range cells {
				b.WriteString("<" + tag + ">" + inline(strings.TrimSpace(c)) + "</" + tag + ">")
			}
			b.WriteString("</tr>\n")
		case strings.HasPrefix(t, "- "):
			if !inList {
				closeBlocks()
				b.WriteString("<ul>")
				inList = true
			}
			b.WriteString("<li>" + inline(strings.TrimPrefix(t, "- ")) + "</li>\n")
		case t == "":
			closeBlocks()
		default:
			if inList {
				b.WriteString(inline(t) + "\n")
				continue
			}
			closeBlocks()
			b.WriteString("<p>" + inline(t) + "</p>\n")
		}
	}
	closeBlocks()
	return template.HTML(b.String())
}
