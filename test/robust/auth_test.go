package robust_test

import (
	"crypto/md5"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

var challengeParam = regexp.MustCompile(`(\w+)="?([^",]*)"?`)

// md5Challenge returns realm, nonce and qop of the MD5 challenge in res.
func md5Challenge(res *sip.Response) (realm, nonce, qop string, ok bool) {
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		v := h.Value()
		p := map[string]string{}
		for _, m := range challengeParam.FindAllStringSubmatch(v, -1) {
			p[strings.ToLower(m[1])] = m[2]
		}
		if a := strings.ToUpper(p["algorithm"]); a == "" || a == "MD5" {
			return p["realm"], p["nonce"], p["qop"], true
		}
	}
	return "", "", "", false
}

func md5hex(s string) string { return fmt.Sprintf("%x", md5.Sum([]byte(s))) }

// TestWrongPasswordsBlockSource guesses one wrong password for each of a
// dozen users, each answer computed properly from the registrar's MD5
// challenge: the registrar's per-user lockout never triggers, but the
// failures it reports make the guard block the source.
func TestWrongPasswordsBlockSource(t *testing.T) {
	u := startUnit(t, func(c *config.Config) {
		c.Registrar.Enabled = true
		c.Registrar.Domains = []string{insideIP}
		c.Registrar.Users = []config.RegistrarUser{{Username: "100", Password: "Zq8-unlikely-7731"}}
	})
	s := siptest.ListenRawUDP(t, scannerIP+":0")
	uri := "sip:" + insideIP
	exchange := func(msg string, callID string) *sip.Response {
		s.Send(u.insideUDP, msg)
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
			m, _, err := s.Recv(time.Until(end))
			if err != nil {
				return nil
			}
			if r, ok := m.(*sip.Response); ok && r.CallID() != nil && r.CallID().Value() == callID {
				return r
			}
		}
		return nil
	}
	failures := 0
	for i := range 12 {
		user := fmt.Sprint(200 + i)
		callID, tag := siptest.NewTag(), siptest.NewTag()
		reg := func(cseq int, auth string) string {
			m := request("REGISTER", uri, s.Local, callID, tag, "", cseq, auth, "")
			// REGISTER's From and To name the user being registered.
			m = strings.Replace(m, "From: <sip:robust@"+scannerIP+">", "From: <sip:"+user+"@"+insideIP+">", 1)
			return strings.Replace(m, "To: <"+uri+">", "To: <sip:"+user+"@"+insideIP+">", 1)
		}
		r := exchange(reg(1, ""), callID)
		if r == nil {
			break // blocked: no answer any more
		}
		realm, nonce, qop, ok := md5Challenge(r)
		if r.StatusCode != 401 || !ok {
			t.Fatalf("REGISTER for %s answered %d without an MD5 challenge", user, r.StatusCode)
		}
		ha1 := md5hex(user + ":" + realm + ":wrong-" + user)
		ha2 := md5hex("REGISTER:" + uri)
		resp := md5hex(ha1 + ":" + nonce + ":" + ha2)
		extra := ""
		if qop != "" {
			resp = md5hex(ha1 + ":" + nonce + ":00000001:abcdef:auth:" + ha2)
			extra = `, qop=auth, nc=00000001, cnonce="abcdef"`
		}
		auth := fmt.Sprintf("Authorization: Digest username=%q, realm=%q, nonce=%q, uri=%q, response=%q, algorithm=MD5%s\r\n", user, realm, nonce, uri, resp, extra)
		if r := exchange(reg(2, auth), callID); r == nil {
			break
		} else if r.StatusCode == 401 || r.StatusCode == 403 {
			failures++
		}
	}
	t.Logf("%d wrong passwords answered before the source was blocked", failures)
	for i := 0; i < 30 && u.metric(t, "palisade_guard_blocks_total", "cause", "auth") < 1; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if v := u.metric(t, "palisade_guard_blocks_total", "cause", "auth"); v < 1 {
		t.Fatalf("source not blocked after %d wrong passwords (blocks_total{cause=auth} = %v)", failures, v)
	}
	if failures > 10 {
		t.Errorf("%d failures answered; the guard blocks at 10", failures)
	}
	if !u.optionsOK(t, "udp", u.insideUDP) {
		t.Error("unit does not answer other sources")
	}
}
