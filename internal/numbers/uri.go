package numbers

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// URI rewrites the user part of a SIP or tel URI in place for field and,
// with UserPhone, marks a SIP URI whose user is a telephone number with
// user=phone (RFC 3261 §19.1.1). It reports whether the URI changed.
func (s *Set) URI(field string, u *sip.Uri) bool {
	if s == nil || u == nil {
		return false
	}
	changed := false
	switch strings.ToLower(u.Scheme) {
	case "sip", "sips":
		if n := s.Number(field, u.User); n != u.User {
			u.User, changed = n, true
		}
		if s.UserPhone && IsPhoneNumber(u.User) && !u.UriParams.Has("user") {
			if u.UriParams == nil {
				u.UriParams = sip.NewParams()
			}
			u.UriParams.Add("user", "phone")
			changed = true
		}
	}
	return changed
}

// Tel rewrites the number of a tel: URI given as text ("tel:+4930123;ext=1");
// other text is returned unchanged.
func (s *Set) Tel(field, uri string) string {
	if len(uri) < 4 || !strings.EqualFold(uri[:4], "tel:") {
		return uri
	}
	return uri[:4] + s.Number(field, uri[4:])
}

// Address rewrites a name-addr or addr-spec header value (To, From,
// P-Asserted-Identity, e.g. `"Alice" <sip:+4930123@host>;tag=x`) and
// returns the new value; a value it cannot parse is returned unchanged, as
// is a tel: URI's text apart from its number.
func (s *Set) Address(field, value string) string {
	if s == nil {
		return value
	}
	if i := strings.Index(strings.ToLower(value), "tel:"); i >= 0 && !strings.Contains(strings.ToLower(value[:i]), "sip") {
		end := len(value)
		if j := strings.IndexAny(value[i:], ">"); j >= 0 {
			end = i + j
		}
		return value[:i] + s.Tel(field, value[i:end]) + value[end:]
	}
	var u sip.Uri
	params := sip.NewParams()
	name, err := sip.ParseAddressValue(value, &u, &params)
	if err != nil || u.Scheme == "" || !s.URI(field, &u) {
		return value
	}
	h := sip.ToHeader{DisplayName: name, Address: u, Params: params}
	return h.Value()
}
