package b2bua

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
)

// authParams parses the parameters of a Digest credentials value.
func authParams(t *testing.T, v string) map[string]string {
	t.Helper()
	v, ok := strings.CutPrefix(strings.TrimSpace(v), "Digest ")
	if !ok {
		t.Fatalf("not a Digest answer: %q", v)
	}
	m := map[string]string{}
	for _, part := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		m[strings.ToLower(k)] = strings.Trim(val, `"`)
	}
	return m
}

// verifyDigest recomputes the response of RFC 7616 §3.4.1 (qop=auth)
// independently of the code under test.
func verifyDigest(t *testing.T, algo, method, password, authz string) map[string]string {
	t.Helper()
	p := authParams(t, authz)
	newH := func() hash.Hash { return md5.New() }
	if algo == "SHA-256" {
		newH = sha256.New
	}
	h := func(s string) string { x := newH(); x.Write([]byte(s)); return hex.EncodeToString(x.Sum(nil)) }
	ha1 := h(p["username"] + ":" + p["realm"] + ":" + password)
	ha2 := h(method + ":" + p["uri"])
	want := h(ha1 + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":" + p["qop"] + ":" + ha2)
	if p["response"] != want {
		t.Fatalf("%s response %q, want %q (%s)", algo, p["response"], want, authz)
	}
	if p["qop"] != "auth" || p["nc"] == "" || p["cnonce"] == "" {
		t.Fatalf("qop/nc/cnonce missing: %s", authz)
	}
	return p
}

// callPBXToTrunk places a call from pbx through u and waits for its final
// answer (the error of WaitAnswer).
func callPBXToTrunk(t *testing.T, ctx context.Context, pbx *peerUA, u *testUnit) (*sipgo.DialogClientSession, error) {
	t.Helper()
	sess, err := pbx.Call(ctx, u.inside(), "4930123456", testSDP("127.0.0.1", 7000))
	if err != nil {
		t.Fatal(err)
	}
	return sess, sess.WaitAnswer(ctx, sipgo.AnswerOptions{})
}

func withTrunkAuth(c *config.Config) {
	for i := range c.Peers {
		if c.Peers[i].Name == "itsp" {
			c.Peers[i].Auth = config.PeerAuth{Username: "palisade", Password: "s3cret"}
		}
	}
}

func TestInviteAnswersTrunkChallenge(t *testing.T) {
	for _, tc := range []struct {
		name, algo string
		code       int
		hdr, authz string
	}{
		{"401 MD5", "MD5", 401, "WWW-Authenticate", "Authorization"},
		{"407 SHA-256", "SHA-256", 407, "Proxy-Authenticate", "Proxy-Authorization"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pbx, itsp := newUDPPeers(t)
			itsp.SetOnInvite(func(s *sipgo.DialogServerSession, req *sip.Request) {
				if req.GetHeader(tc.authz) == nil {
					_ = s.Respond(tc.code, "Auth Required", nil, sip.NewHeader(tc.hdr,
						`Digest realm="trunk.example", nonce="n0nce-`+tc.algo+`", algorithm=`+tc.algo+`, qop="auth"`))
					return
				}
				ringAndAnswer(s, req)
			})
			u := newTestUnit(t, pbx, itsp, withTrunkAuth)
			ctx := ctxT(t)
			sess, err := callPBXToTrunk(t, ctx, pbx, u)
			if err != nil {
				t.Fatalf("call not answered: %v", err)
			}
			if err := sess.Ack(ctx); err != nil {
				t.Fatal(err)
			}
			first, second := itsp.Next(sip.INVITE), itsp.Next(sip.INVITE)
			if second.GetHeader(tc.authz) == nil {
				t.Fatalf("answered INVITE without %s", tc.authz)
			}
			if first.CallID().Value() != second.CallID().Value() || getTag(first.From().Params) != getTag(second.From().Params) {
				t.Fatal("retry changed Call-ID or From tag")
			}
			if second.CSeq().SeqNo != first.CSeq().SeqNo+1 {
				t.Fatalf("retry CSeq %d after %d", second.CSeq().SeqNo, first.CSeq().SeqNo)
			}
			brA, _ := first.Via().Params.Get("branch")
			brB, _ := second.Via().Params.Get("branch")
			if brA == brB {
				t.Fatal("retry reused the branch")
			}
			p := verifyDigest(t, tc.algo, "INVITE", "s3cret", second.GetHeader(tc.authz).Value())
			if p["username"] != "palisade" || p["uri"] != second.Recipient.String() {
				t.Fatalf("username/uri: %v", p)
			}
			itsp.Next(sip.ACK)
			if err := sess.Bye(ctx); err != nil {
				t.Fatal(err)
			}
			itsp.Next(sip.BYE)
			waitNoCalls(t, u.Service)
		})
	}
}

// A challenge after our answer is the failure, unless it only says the
// nonce went stale: that one is answered again.
func TestChallengeAfterAnswer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stale   bool
		invites int
		code    int
	}{
		{"wrong credentials", false, 2, 401},
		{"stale nonce", true, 3, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pbx, itsp := newUDPPeers(t)
			var n atomic.Int32
			itsp.SetOnInvite(func(s *sipgo.DialogServerSession, req *sip.Request) {
				switch n.Add(1) {
				case 1:
					_ = s.Respond(401, "Unauthorized", nil, sip.NewHeader("WWW-Authenticate", `Digest realm="r", nonce="x", qop="auth"`))
				case 2:
					chal := `Digest realm="r", nonce="y", qop="auth"`
					if tc.stale {
						chal += ", stale=true"
					}
					_ = s.Respond(401, "Unauthorized", nil, sip.NewHeader("WWW-Authenticate", chal))
				default:
					ringAndAnswer(s, req)
				}
			})
			u := newTestUnit(t, pbx, itsp, withTrunkAuth)
			ctx := ctxT(t)
			sess, err := callPBXToTrunk(t, ctx, pbx, u)
			var re *sipgo.ErrDialogResponse
			switch {
			case tc.code == 200 && err != nil:
				t.Fatalf("call not answered: %v", err)
			case tc.code != 200 && (!errors.As(err, &re) || re.Res.StatusCode != tc.code):
				t.Fatalf("caller got %v, want %d", err, tc.code)
			}
			var last *sip.Request
			for range tc.invites {
				last = itsp.Next(sip.INVITE)
			}
			if p := verifyDigest(t, "MD5", "INVITE", "s3cret", last.GetHeader("Authorization").Value()); p["nonce"] != map[bool]string{true: "y", false: "x"}[tc.stale] {
				t.Fatalf("last INVITE answered nonce %q", p["nonce"])
			}
			if got := itsp.Wire.Count("INVITE "); got != tc.invites {
				t.Fatalf("%d INVITEs reached the trunk, want %d", got, tc.invites)
			}
			if tc.code == 200 {
				_ = sess.Ack(ctx)
				_ = sess.Bye(ctx)
			}
			waitNoCalls(t, u.Service)
		})
	}
}

// challengeOnce makes p answer every in-dialog request, BYE and MESSAGE
// without Proxy-Authorization with a 407 (initial INVITEs are answered).
func challengeOnce(p *peerUA) {
	chal := func(req *sip.Request, tx sip.ServerTransaction) bool {
		p.Push(req)
		if req.GetHeader("Proxy-Authorization") != nil {
			return false
		}
		res := sip.NewResponseFromRequest(req, 407, "Proxy Authentication Required", nil)
		res.AppendHeader(sip.NewHeader("Proxy-Authenticate", `Digest realm="trunk.example", nonce="dlg", algorithm=MD5, qop="auth"`))
		_ = tx.Respond(res)
		return true
	}
	p.Srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		if getTag(req.To().Params) == "" {
			p.Push(req)
			s, err := p.DS.ReadInvite(req, tx)
			if err != nil {
				return
			}
			p.Sessions <- s
			ringAndAnswer(s, req)
			<-s.Context().Done()
			return
		}
		if !chal(req, tx) {
			p.AnswerInDialog(req, tx)
		}
	})
	p.Srv.OnRequest(sip.MESSAGE, func(req *sip.Request, tx sip.ServerTransaction) {
		if !chal(req, tx) {
			p.AnswerInDialog(req, tx)
		}
	})
	p.Srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if !chal(req, tx) {
			_ = p.DS.ReadBye(req, tx)
		}
	})
}

// checkRetry asserts that retry answers the challenge to first.
func checkRetry(t *testing.T, first, retry *sip.Request) {
	t.Helper()
	if first.GetHeader("Proxy-Authorization") != nil {
		t.Fatalf("first %s already authorized", first.Method)
	}
	h := retry.GetHeader("Proxy-Authorization")
	if h == nil {
		t.Fatalf("%s retry without Proxy-Authorization", retry.Method)
	}
	if retry.CSeq().SeqNo <= first.CSeq().SeqNo || retry.CallID().Value() != first.CallID().Value() {
		t.Fatalf("%s retry CSeq %d after %d, Call-ID %q/%q", retry.Method, retry.CSeq().SeqNo, first.CSeq().SeqNo,
			retry.CallID().Value(), first.CallID().Value())
	}
	if p := verifyDigest(t, "MD5", string(retry.Method), "s3cret", h.Value()); p["uri"] != retry.Recipient.String() {
		t.Fatalf("digest uri %q for %s", p["uri"], retry.Recipient.String())
	}
}

func TestInDialogAndStandaloneChallenges(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	itsp := newPeerUAWith(t, "trunk", "127.0.0.3", "udp", challengeOnce)
	u := newTestUnit(t, pbx, itsp, withTrunkAuth)
	sess, _ := establish(t, u, pbx, itsp, viaInside(u))
	ctx := ctxT(t)

	t.Run("re-INVITE", func(t *testing.T) {
		re := sip.NewRequest(sip.INVITE, sess.InviteResponse.Contact().Address)
		re.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		re.SetBody(append(testSDP("127.0.0.1", 7002), []byte("a=sendonly\r\n")...))
		res, err := sess.Do(ctx, re)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("re-INVITE: %v %v", res, err)
		}
		first, retry := itsp.Next(sip.INVITE), itsp.Next(sip.INVITE)
		checkRetry(t, first, retry)
		if err := sess.WriteRequest(sip.NewRequest(sip.ACK, sess.InviteResponse.Contact().Address)); err != nil {
			t.Fatal(err)
		}
		if a := itsp.Next(sip.ACK); a.CSeq().SeqNo != retry.CSeq().SeqNo {
			t.Fatalf("ACK CSeq %d for the authorized re-INVITE's %d", a.CSeq().SeqNo, retry.CSeq().SeqNo)
		}
	})
	t.Run("MESSAGE out of dialog", func(t *testing.T) {
		in := u.inside()
		msg := sip.NewRequest(sip.MESSAGE, uriAt(in, "4930"))
		msg.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
		msg.SetBody([]byte("hi"))
		res, err := pbx.Cli.Do(ctx, msg)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("MESSAGE: %v %v", res, err)
		}
		checkRetry(t, itsp.Next(sip.MESSAGE), itsp.Next(sip.MESSAGE))
	})
	t.Run("BYE", func(t *testing.T) {
		if err := sess.Bye(ctx); err != nil {
			t.Fatal(err)
		}
		checkRetry(t, itsp.Next(sip.BYE), itsp.Next(sip.BYE))
		waitNoCalls(t, u.Service)
	})
}
