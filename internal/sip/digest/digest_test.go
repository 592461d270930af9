package digest

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func register(_ *testing.T) *sip.Request {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "example.com"})
	req.AppendHeader(sip.NewHeader("CSeq", "1 REGISTER"))
	return req
}

func challenged(code int, values ...string) *sip.Response {
	res := sip.NewResponse(code, "Unauthorized")
	name := "WWW-Authenticate"
	if code == 407 {
		name = "Proxy-Authenticate"
	}
	for _, v := range values {
		res.AppendHeader(sip.NewHeader(name, v))
	}
	return res
}

func users(u, realm string) (string, bool) {
	if u == "alice" && realm == "example.com" {
		return "secret", true
	}
	return "", false
}

func TestRoundTrip(t *testing.T) {
	srv := NewServer(time.Minute)
	for _, alg := range []string{"SHA-256", "MD5"} {
		t.Run(alg, func(t *testing.T) {
			var chal []string
			for _, c := range srv.Challenges("example.com", false) {
				if strings.Contains(c, "algorithm="+alg) {
					chal = append(chal, c)
				}
			}
			cli := NewClient()
			for i := 1; i <= 3; i++ { // the same nonce reused: nc 1, 2, 3
				req := register(t)
				if err := cli.Authorize(req, challenged(401, chal...), Credentials{Username: "alice", Password: "secret"}); err != nil {
					t.Fatal(err)
				}
				h := req.GetHeader("Authorization").Value()
				if !strings.Contains(h, "algorithm="+alg) || !strings.Contains(h, "qop=auth") || !strings.Contains(h, "nc=0000000"+string(rune('0'+i))) {
					t.Fatalf("Authorization %q", h)
				}
				ans, out := srv.Verify("REGISTER", h, users)
				if out != OK || ans.Username != "alice" {
					t.Fatalf("verify %d: %v %+v", i, out, ans)
				}
				// the same answer again is a replay
				if _, out := srv.Verify("REGISTER", h, users); out != Replay {
					t.Fatalf("replayed answer: %v", out)
				}
			}
		})
	}
}

func TestClientPrefersSHA256(t *testing.T) {
	srv := NewServer(time.Minute)
	chal := srv.Challenges("example.com", false)
	// MD5 listed first by the server: still SHA-256 is chosen
	res := challenged(401, chal[1], chal[0])
	req := register(t)
	if err := NewClient().Authorize(req, res, Credentials{Username: "alice", Password: "secret"}); err != nil {
		t.Fatal(err)
	}
	if h := req.GetHeader("Authorization").Value(); !strings.Contains(h, "algorithm=SHA-256") {
		t.Fatalf("got %q", h)
	}
}

func TestClientChallenges(t *testing.T) {
	tests := []struct {
		name    string
		res     *sip.Response
		realm   string
		wantHdr string
		wantErr bool
	}{
		{"proxy 407", challenged(407, `Digest realm="sip.example.net", nonce="abc", qop="auth"`), "", "Proxy-Authorization", false},
		{"no qop (RFC 2069)", challenged(401, `Digest realm="r", nonce="abc"`), "", "Authorization", false},
		{"lower-case algorithm, spaced qop", challenged(401, `Digest realm="r", nonce="n", algorithm=md5, qop="auth-int, auth"`), "", "Authorization", false},
		{"realm mismatch", challenged(401, `Digest realm="other", nonce="abc", qop="auth"`), "mine", "", true},
		{"auth-int only", challenged(401, `Digest realm="r", nonce="abc", qop="auth-int"`), "", "", true},
		{"unknown algorithm", challenged(401, `Digest realm="r", nonce="abc", algorithm=SHA-1`), "", "", true},
		{"basic", challenged(401, `Basic realm="r"`), "", "", true},
		{"no nonce", challenged(401, `Digest realm="r"`), "", "", true},
		{"none", challenged(401), "", "", true},
		{"garbage", challenged(401, `Digest realm="r, nonce=`), "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := register(t)
			err := NewClient().Authorize(req, tt.res, Credentials{Username: "u", Password: "p", Realm: tt.realm})
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.GetHeader(tt.wantHdr) == nil {
				t.Fatalf("no %s in %s", tt.wantHdr, req)
			}
		})
	}
}

func TestVerifyOutcomes(t *testing.T) {
	srv := NewServer(time.Minute)
	now := time.Now()
	srv.now = func() time.Time { return now }
	answer := func(user, pw string) string {
		req := register(t)
		if err := NewClient().Authorize(req, challenged(401, srv.Challenges("example.com", false)...), Credentials{Username: user, Password: pw}); err != nil {
			t.Fatal(err)
		}
		return req.GetHeader("Authorization").Value()
	}
	good := answer("alice", "secret")
	wrong := answer("alice", "guess")
	unknown := answer("mallory", "secret")
	other := NewServer(time.Minute) // a restart: a new key
	otherReq := register(t)
	_ = NewClient().Authorize(otherReq, challenged(401, other.Challenges("example.com", false)...), Credentials{Username: "alice", Password: "secret"})
	tests := []struct {
		name string
		auth string
		want Outcome
	}{
		{"missing", "", Missing},
		{"basic", "Basic YWxpY2U6c2VjcmV0", Missing},
		{"malformed", `Digest username="alice", realm=`, Malformed},
		{"no response", `Digest username="alice", realm="example.com", nonce="x", uri="sip:example.com"`, Malformed},
		{"no qop", strings.Replace(good, "qop=auth", "qop=", 1), Malformed},
		{"bad nc", strings.Replace(good, "nc=00000001", "nc=zz", 1), Malformed},
		{"wrong password", wrong, WrongPassword},
		{"unknown user", unknown, UnknownUser},
		{"other server's nonce", otherReq.GetHeader("Authorization").Value(), Stale},
		{"good", good, OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := srv.Verify("REGISTER", tt.auth, users); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	// the method is part of the hash
	if _, got := srv.Verify("INVITE", answer("alice", "secret"), users); got != WrongPassword {
		t.Fatalf("other method: %v", got)
	}
	// past the lifetime the nonce is stale, though the password is right
	late := answer("alice", "secret")
	now = now.Add(3 * time.Minute)
	if _, got := srv.Verify("REGISTER", late, users); got != Stale {
		t.Fatalf("old nonce: %v", got)
	}
	srv.Prune()
	if len(srv.seen) != 0 {
		t.Fatalf("%d nonces kept after their lifetime", len(srv.seen))
	}
}

// FuzzVerify feeds outside Authorization values to the server.
func FuzzVerify(f *testing.F) {
	srv := NewServer(time.Minute)
	req := register(nil)
	_ = NewClient().Authorize(req, challenged(401, srv.Challenges("example.com", false)...), Credentials{Username: "alice", Password: "secret"})
	f.Add(req.GetHeader("Authorization").Value())
	f.Add(`Digest username="a\"b", realm="", nonce="", uri="", response="", nc=ffffffffff`)
	f.Add(`Digest ,,,=`)
	f.Fuzz(func(t *testing.T, auth string) {
		srv.Verify("REGISTER", auth, users)
		_, _ = ParseChallenge(auth)
	})
}
