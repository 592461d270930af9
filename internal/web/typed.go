package web

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
)

// A page that comes back with errors shows what the administrator typed,
// not what the configuration made of it (a bad duration would read "0s").
// The page is rendered from the configuration as usual and then each text
// input takes the posted value of the same name and position, for the names
// whose inputs on the page and posted values agree in number (a table that
// lost empty rows keeps the configuration's values).

func (s *server) renderTyped(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	v.typed = r.PostForm
	s.render(w, status, name, v)
}

var (
	inputRE    = regexp.MustCompile(`<input\b[^>]*>`)
	templateRE = regexp.MustCompile(`(?s)<template\b.*?</template>`)
	nameRE     = regexp.MustCompile(`\sname="([^"]*)"`)
	typeRE     = regexp.MustCompile(`\stype="([^"]*)"`)
	valueRE    = regexp.MustCompile(`\svalue="[^"]*"`)
	selectRE   = regexp.MustCompile(`(?s)<select\b[^>]*>.*?</select>`)
	optionRE   = regexp.MustCompile(`<option value="([^"]*)"( selected)?>`)
)

// keepSelected makes each select show the posted choice (same rule as the
// inputs: only for names whose selects and posted values agree in number).
func keepSelected(page []byte, posted url.Values) []byte {
	skip := templateRE.FindAllIndex(page, -1)
	var spans [][]int
	count := map[string]int{}
	for _, m := range selectRE.FindAllIndex(page, -1) {
		if slicesContainsSpan(skip, m[0]) {
			continue
		}
		if n := nameRE.FindSubmatch(page[m[0]:m[1]]); n != nil {
			spans = append(spans, m)
			count[html.UnescapeString(string(n[1]))]++
		}
	}
	seen := map[string]int{}
	var out []byte
	last := 0
	for _, m := range spans {
		block := page[m[0]:m[1]]
		name := html.UnescapeString(string(nameRE.FindSubmatch(block)[1]))
		i := seen[name]
		seen[name]++
		vals, ok := posted[name]
		if !ok || len(vals) != count[name] || !optionRE.Match(block) {
			continue
		}
		want := vals[i]
		has := false
		for _, o := range optionRE.FindAllSubmatch(block, -1) {
			has = has || html.UnescapeString(string(o[1])) == want
		}
		if !has {
			continue
		}
		nb := optionRE.ReplaceAllFunc(block, func(o []byte) []byte {
			v := html.UnescapeString(string(optionRE.FindSubmatch(o)[1]))
			sel := ""
			if v == want {
				sel = " selected"
			}
			return []byte(`<option value="` + html.EscapeString(v) + `"` + sel + `>`)
		})
		out = append(out, page[last:m[0]]...)
		out = append(out, nb...)
		last = m[1]
	}
	return append(out, page[last:]...)
}

func slicesContainsSpan(spans [][]int, at int) bool {
	for _, s := range spans {
		if at >= s[0] && at < s[1] {
			return true
		}
	}
	return false
}

func keepTyped(page []byte, posted url.Values) []byte {
	page = keepSelected(page, posted)
	skip := templateRE.FindAllIndex(page, -1)
	inTemplate := func(at int) bool {
		for _, s := range skip {
			if at >= s[0] && at < s[1] {
				return true
			}
		}
		return false
	}
	type field struct {
		start, end int
		name       string
	}
	var fields []field
	count := map[string]int{}
	for _, m := range inputRE.FindAllIndex(page, -1) {
		tag := page[m[0]:m[1]]
		if inTemplate(m[0]) {
			continue
		}
		if t := typeRE.FindSubmatch(tag); t != nil {
			switch string(t[1]) {
			case "text", "number", "email", "url", "search", "tel":
			default:
				continue // hidden, checkbox, radio, password, file, ...
			}
		}
		n := nameRE.FindSubmatch(tag)
		if n == nil {
			continue
		}
		name := html.UnescapeString(string(n[1]))
		fields = append(fields, field{m[0], m[1], name})
		count[name]++
	}
	seen := map[string]int{}
	var out []byte
	last := 0
	for _, f := range fields {
		vals, ok := posted[f.name]
		i := seen[f.name]
		seen[f.name]++
		if !ok || len(vals) != count[f.name] {
			continue
		}
		tag := page[f.start:f.end]
		val := ` value="` + html.EscapeString(vals[i]) + `"`
		var nt []byte
		if valueRE.Match(tag) {
			nt = valueRE.ReplaceAllLiteral(tag, []byte(val))
		} else {
			nt = append(append([]byte{}, tag[:len(tag)-1]...), []byte(val+">")...)
		}
		out = append(out, page[last:f.start]...)
		out = append(out, nt...)
		last = f.end
	}
	return append(out, page[last:]...)
}
