package registrar

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/sip/digest"
)

// errStatus is a REGISTER refused with a SIP status.
type errStatus struct {
	code   int
	reason string
	result string // metric label
}

func (e *errStatus) Error() string { return fmt.Sprintf("%d %s", e.code, e.reason) }

func refuse(code int, reason, result string) error {
	return &errStatus{code: code, reason: reason, result: result}
}

// HandleRegister answers a REGISTER (RFC 3261 §10.3). It returns nil when
// the request is not for this registrar (disabled, or the To domain is
// neither a registrar domain nor one of the unit's own names): the caller
// then treats it like any other request.
func (r *Registrar) HandleRegister(req *sip.Request, src Source) *sip.Response {
	s := r.set.Load()
	if !s.enabled || req.To() == nil {
		return nil
	}
	to := req.To().Address
	host := strings.ToLower(strings.Trim(to.Host, "[]"))
	realm := host
	if !s.isDomain[host] {
		if !s.localHosts[host] || len(s.domains) == 0 {
			return nil
		}
		realm = s.domains[0] // registered to the unit's address: its first domain
	}
	log := r.log.With("call_id", callID(req), "source", src.Addr.String(), "aor", to.User+"@"+realm)
	if to.User == "" {
		return r.answer(req, refuse(400, "Missing user in To", "bad_request"))
	}
	// Authentication.
	ans, out := r.auth.Verify(string(req.Method), headerValue(req, "Authorization"), func(user, rlm string) (string, bool) {
		pw, ok := s.users[user]
		return pw, ok && strings.EqualFold(rlm, realm)
	})
	ip := src.Addr.Addr().Unmap()
	if ans.Username != "" && r.guard.locked(ip, ans.Username) {
		authFailures.WithLabelValues("locked").Inc()
		r.limited.Warn("locked:"+ip.String(), "REGISTER from a locked-out source refused", "user", ans.Username, "source", src.Addr.String())
		return r.answer(req, refuse(403, "Forbidden", "locked"))
	}
	if out == digest.Missing {
		algs, fellBack := r.algs.challenged(ip, to.User)
		if fellBack {
			log.Info("phone did not answer a challenge offering SHA-256; offering it MD5 only")
		}
		return r.challenge(req, realm, false, "challenged", algs...)
	}
	r.algs.answered(ip, to.User)
	md5Only, _ := r.algs.challengedAlgs(ip, to.User)
	switch out {
	case digest.OK:
		r.guard.success(ip, ans.Username)
	case digest.Stale:
		return r.challenge(req, realm, true, "stale", md5Only...)
	case digest.Replay:
		authFailures.WithLabelValues("replay").Inc()
		r.limited.Warn("replay:"+ip.String(), "REGISTER reused a nonce count", "user", ans.Username, "source", src.Addr.String())
		return r.challenge(req, realm, true, "stale", md5Only...)
	case digest.Malformed:
		authFailures.WithLabelValues("malformed").Inc()
		r.limited.Warn("malformed:"+ip.String(), "REGISTER with an unusable Authorization header", "source", src.Addr.String())
		return r.answer(req, refuse(400, "Bad Authorization header", "bad_request"))
	default: // WrongPassword, UnknownUser: answered alike
		authFailures.WithLabelValues(out.String()).Inc()
		locked := r.guard.fail(ip, ans.Username)
		if r.failures != nil {
			r.failures.AuthFailed(ip)
		}
		r.limited.Warn("authfail:"+ip.String(), "REGISTER with a wrong password or unknown user",
			"user", ans.Username, "realm", ans.Realm, "source", src.Addr.String(), "reason", out.String(), "locked_out", locked)
		if locked {
			lockouts.Inc()
			return r.answer(req, refuse(403, "Forbidden", "locked"))
		}
		return r.challenge(req, realm, false, "wrong_password", md5Only...)
	}
	if ans.Username != to.User {
		r.limited.Warn("aor:"+ip.String(), "REGISTER for another user's address refused", "user", ans.Username, "to", to.User)
		return r.answer(req, refuse(403, "Forbidden", "forbidden"))
	}
	aor := to.User + "@" + realm
	res, err := r.update(req, src, aor, s)
	if err != nil {
		var es *errStatus
		var me *minExpiresErr
		if !errors.As(err, &es) && !errors.As(err, &me) {
			log.Error("REGISTER failed", "err", err)
		}
		return r.answer(req, err)
	}
	return res
}

// change is one Contact of a REGISTER.
type change struct {
	key     string
	contact sip.Uri
	expires int // seconds, 0 = remove
	q       int
}

// update applies the Contacts of an authenticated REGISTER to aor.
func (r *Registrar) update(req *sip.Request, src Source, aor string, s *settings) (*sip.Response, error) {
	hdrExp, hasHdrExp, err := parseExpires(headerValue(req, "Expires"))
	if err != nil {
		return nil, err
	}
	contacts, wildcard, err := contactsOf(req)
	if err != nil {
		return nil, err
	}
	if wildcard && (len(contacts) > 0 || !hasHdrExp || hdrExp != 0) {
		return nil, refuse(400, "Contact: * needs Expires: 0 and no other Contact", "bad_request")
	}
	var changes []change
	for _, c := range contacts {
		exp := defaultExpires
		if hasHdrExp {
			exp = hdrExp
		}
		if v, ok := c.Params.Get("expires"); ok {
			e, has, err := parseExpires(v)
			if err != nil {
				return nil, err
			}
			if has {
				exp = e
			}
		}
		if exp > 0 && exp < s.minExp {
			return nil, &minExpiresErr{min: s.minExp}
		}
		exp = min(exp, s.maxExp)
		q := 1000
		if v, ok := c.Params.Get("q"); ok {
			if q, err = parseQ(v); err != nil {
				return nil, err
			}
		}
		changes = append(changes, change{key: contactKey(c.Address), contact: c.Address, expires: exp, q: q})
	}
	now := r.now()
	cid, cseq := callID(req), uint32(0)
	if h := req.CSeq(); h != nil {
		cseq = h.SeqNo
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	bs := live(r.bindings[aor], now)
	result := "fetch"
	switch {
	case wildcard:
		bs, result = nil, "unregister"
	case len(changes) > 0:
		result = "ok"
		for _, ch := range changes {
			i := slices.IndexFunc(bs, func(b Binding) bool { return bindingKey(b) == ch.key })
			if i >= 0 && bs[i].CallID == cid && cseq <= bs[i].CSeq {
				// RFC 3261 §10.3 step 7: an old or repeated request.
				return nil, refuse(500, "Out of order REGISTER", "bad_request")
			}
			if ch.expires == 0 {
				if i >= 0 {
					bs = slices.Delete(bs, i, i+1)
				}
				if len(changes) == 1 {
					result = "unregister"
				}
				continue
			}
			b := Binding{Contact: ch.contact.String(), Expires: now.Add(time.Duration(ch.expires) * time.Second),
				Q: ch.q, CallID: cid, CSeq: cseq, Source: src.Addr.String(), Transport: strings.ToLower(src.Transport),
				Interface: src.Interface, UserAgent: truncate(headerValue(req, "User-Agent"), 200), Updated: now}
			if i >= 0 {
				bs[i] = b
			} else {
				bs = append(bs, b)
			}
		}
		if len(bs) > maxContacts {
			return nil, refuse(403, fmt.Sprintf("Too many contacts (at most %d)", maxContacts), "forbidden")
		}
	}
	if result != "fetch" || len(bs) != len(r.bindings[aor]) {
		if err := r.saveLocked(context.Background(), aor, bs); err != nil {
			return nil, err
		}
	}
	registersTotal.WithLabelValues(result).Inc()
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	for _, b := range bs {
		var u sip.Uri
		if sip.ParseUri(b.Contact, &u) != nil {
			continue
		}
		ch := &sip.ContactHeader{Address: u, Params: sip.NewParams()}
		ch.Params.Add("expires", strconv.Itoa(max(0, int(b.Expires.Sub(now).Round(time.Second).Seconds()))))
		if b.Q != 1000 {
			ch.Params.Add("q", formatQ(b.Q))
		}
		res.AppendHeader(ch)
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	return res, nil
}

// minExpiresErr is 423 Interval Too Brief.
type minExpiresErr struct{ min int }

func (e *minExpiresErr) Error() string { return "423 Interval Too Brief" }

// answer turns err into a response.
func (r *Registrar) answer(req *sip.Request, err error) *sip.Response {
	var me *minExpiresErr
	if errors.As(err, &me) {
		registersTotal.WithLabelValues("interval_too_brief").Inc()
		res := sip.NewResponseFromRequest(req, 423, "Interval Too Brief", nil)
		res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(me.min)))
		return res
	}
	var es *errStatus
	if errors.As(err, &es) {
		registersTotal.WithLabelValues(es.result).Inc()
		return sip.NewResponseFromRequest(req, es.code, es.reason, nil)
	}
	registersTotal.WithLabelValues("error").Inc()
	return sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil)
}

// challenge is 401 with a challenge per algorithm.
func (r *Registrar) challenge(req *sip.Request, realm string, stale bool, result string, algs ...string) *sip.Response {
	registersTotal.WithLabelValues(result).Inc()
	res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	for _, c := range r.auth.Challenges(realm, stale, algs...) {
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", c))
	}
	return res
}

// contactsOf returns the Contacts of req, or wildcard for "Contact: *".
func contactsOf(req *sip.Request) ([]*sip.ContactHeader, bool, error) {
	var out []*sip.ContactHeader
	wildcard := false
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			c = &sip.ContactHeader{}
			if _, err := sip.ParseAddressValue(h.Value(), &c.Address, &c.Params); err != nil {
				return nil, false, refuse(400, "Bad Contact", "bad_request")
			}
		}
		if c.Address.Wildcard {
			wildcard = true
			continue
		}
		sch := strings.ToLower(c.Address.Scheme)
		if (sch != "sip" && sch != "sips") || c.Address.Host == "" {
			return nil, false, refuse(400, "Contact is not a sip: or sips: URI", "bad_request")
		}
		if c.Params == nil {
			c.Params = sip.NewParams()
		}
		out = append(out, c)
	}
	if len(out) > maxContacts {
		return nil, false, refuse(403, fmt.Sprintf("Too many contacts (at most %d)", maxContacts), "forbidden")
	}
	return out, wildcard, nil
}

// parseExpires reads an Expires value (delta-seconds). Values beyond 2^32-1
// are capped (RFC 3261 §20.19 allows that); anything else but digits is
// refused with 400.
func parseExpires(v string) (int, bool, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false, nil
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false, refuse(400, "Bad Expires value", "bad_request")
		}
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > math.MaxUint32 {
		n = math.MaxUint32
	}
	return int(n), true, nil
}

// parseQ reads a q value (0 to 1, at most three decimals) in thousandths.
func parseQ(v string) (int, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < 0 || f > 1 || math.IsNaN(f) || len(v) > 5 {
		return 0, refuse(400, "Bad q value", "bad_request")
	}
	return int(math.Round(f * 1000)), nil
}

func formatQ(q int) string {
	return strconv.FormatFloat(float64(q)/1000, 'f', -1, 64)
}

// contactKey identifies a contact for RFC 3261 §19.1.4 style comparison:
// scheme, user, host (case-insensitive), port, transport.
func contactKey(u sip.Uri) string {
	port := u.Port
	sch := strings.ToLower(u.Scheme)
	tp := ""
	if u.UriParams != nil {
		tp, _ = u.UriParams.Get("transport")
	}
	tp = strings.ToLower(tp)
	if port == 0 {
		port = 5060
		if sch == "sips" || tp == "tls" {
			port = 5061
		}
	}
	return sch + ":" + u.User + "@" + strings.ToLower(u.Host) + ":" + strconv.Itoa(port) + ";" + tp
}

func bindingKey(b Binding) string {
	var u sip.Uri
	if sip.ParseUri(b.Contact, &u) != nil {
		return b.Contact
	}
	return contactKey(u)
}

func headerValue(req *sip.Request, name string) string {
	if h := req.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

func callID(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Serve answers a REGISTER that arrived on the unit's interface iface, in
// the server transaction tx. It returns false, without answering, when the
// request is not for the registrar (see HandleRegister); the SIP layer
// then answers it itself.
func (r *Registrar) Serve(req *sip.Request, tx sip.ServerTransaction, iface string) bool {
	src, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return false
	}
	res := r.HandleRegister(req, Source{Addr: src, Transport: strings.ToLower(req.Transport()), Interface: iface})
	if res == nil {
		return false
	}
	if err := tx.Respond(res); err != nil {
		r.limited.Warn("respond", "sending a REGISTER answer failed", "status", res.StatusCode, "err", err)
	}
	return true
}
