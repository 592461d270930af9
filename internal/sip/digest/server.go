package digest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"sync"
	"time"

	"github.com/icholy/digest"
)

// Outcome is the result of checking an Authorization header.
type Outcome int

const (
	// OK: the response matches the password and the nonce is fresh.
	OK Outcome = iota
	// Missing: no Authorization header (or not a digest one).
	Missing
	// Malformed: the header cannot be parsed or lacks required fields.
	Malformed
	// Stale: the nonce was ours but is too old (or from before a
	// restart); the client retries with a new one without asking the user.
	Stale
	// Replay: the nonce count was not above the last one seen for the nonce.
	Replay
	// UnknownUser: no such user in the realm. Answered like WrongPassword
	// so that scanners cannot tell users apart.
	UnknownUser
	// WrongPassword: the response does not match.
	WrongPassword
)

var outcomeNames = [...]string{"ok", "missing", "malformed", "stale", "replay", "unknown_user", "wrong_password"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Server issues challenges and verifies answers. Nonces are stateless (a
// timestamp and random bytes signed with a key made at start), so a flood of
// unauthenticated requests costs no memory; only nonces that authenticated
// a request are remembered, with their last nonce count. Safe for
// concurrent use.
type Server struct {
	key      [32]byte
	lifetime time.Duration
	now      func() time.Time

	mu   sync.Mutex
	seen map[string]seenNonce
}

type seenNonce struct {
	nc      int
	expires time.Time
}

// maxSeen bounds the remembered nonces (each one came with a valid
// password, so reaching it takes many phones or a misbehaving one).
const maxSeen = 100000

// NewServer returns a server whose nonces are good for lifetime (then the
// client gets stale=true and a new nonce).
func NewServer(lifetime time.Duration) *Server {
	s := &Server{lifetime: lifetime, now: time.Now, seen: make(map[string]seenNonce)}
	if _, err := rand.Read(s.key[:]); err != nil {
		panic("digest: no randomness: " + err.Error())
	}
	return s
}

// SetKey replaces the nonce key, so that several servers (the units of a
// cluster) accept each other's nonces. Call it before the server issues
// or checks its first nonce: the key is read without a lock.
func (s *Server) SetKey(key [32]byte) { s.key = key }

// Algorithms offered in challenges, strongest first (RFC 8760 §2.4: a
// client uses the first one it supports).
var Algorithms = []string{"SHA-256", "MD5"}

// Challenges returns the WWW-Authenticate values for realm: one per
// algorithm (algs, default Algorithms), sharing one fresh nonce, qop=auth.
func (s *Server) Challenges(realm string, stale bool, algs ...string) []string {
	if len(algs) == 0 {
		algs = Algorithms
	}
	nonce := s.newNonce()
	out := make([]string, 0, len(algs))
	for _, alg := range algs {
		c := digest.Challenge{Realm: realm, Nonce: nonce, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		out = append(out, c.String())
	}
	return out
}

// nonce layout: 8 bytes unix nanoseconds, 8 random bytes, 16 bytes HMAC.
func (s *Server) newNonce() string {
	var b [32]byte
	binary.BigEndian.PutUint64(b[:8], uint64(s.now().UnixNano()))
	_, _ = rand.Read(b[8:16])
	m := hmac.New(sha256.New, s.key[:])
	m.Write(b[:16])
	copy(b[16:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// checkNonce reports whether the nonce is ours, and whether it is still
// within its lifetime.
func (s *Server) checkNonce(n string) (ours, fresh bool) {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 32 {
		return false, false
	}
	m := hmac.New(sha256.New, s.key[:])
	m.Write(b[:16])
	if !hmac.Equal(m.Sum(nil)[:16], b[16:]) {
		return false, false
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	age := s.now().Sub(issued)
	return true, age >= -time.Minute && age <= s.lifetime
}

// Answer is a parsed Authorization header.
type Answer struct {
	Username string
	Realm    string
}

// Verify checks the Authorization value auth of a request with method.
// password returns the password of username in realm (false: no such
// user). The Answer names the user and realm the client claimed (empty
// when Malformed or Missing).
func (s *Server) Verify(method, auth string, password func(username, realm string) (string, bool)) (Answer, Outcome) {
	if !digest.IsDigest(strings.TrimSpace(auth)) {
		return Answer{}, Missing
	}
	cred, err := digest.ParseCredentials(strings.TrimSpace(auth))
	if err != nil || cred.Username == "" || cred.Nonce == "" || cred.Response == "" || cred.URI == "" {
		return Answer{}, Malformed
	}
	ans := Answer{Username: cred.Username, Realm: cred.Realm}
	alg := strings.ToUpper(cred.Algorithm)
	// qop=auth is what we offer; RFC 2069 answers without qop have no
	// nonce count and could be replayed, so they are refused.
	if (alg != "" && alg != "MD5" && alg != "SHA-256") || !strings.EqualFold(cred.QOP, "auth") || cred.Cnonce == "" || cred.Nc <= 0 || cred.Userhash {
		return ans, Malformed
	}
	ours, fresh := s.checkNonce(cred.Nonce)
	if !ours {
		// A nonce from before a restart (new key) or made up: ask again
		// with stale=true so a real phone retries without a new password.
		return ans, Stale
	}
	pw, known := password(cred.Username, cred.Realm)
	if !known {
		pw = "\x00unknown" // still hash, so timing tells nothing
	}
	want, err := digest.Digest(&digest.Challenge{Realm: cred.Realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm, QOP: []string{"auth"}},
		digest.Options{Method: method, URI: cred.URI, Count: cred.Nc, Cnonce: cred.Cnonce, Username: cred.Username, Password: pw})
	if err != nil {
		return ans, Malformed
	}
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(cred.Response)), []byte(want.Response)) != 1 {
		if !known {
			return ans, UnknownUser
		}
		return ans, WrongPassword
	}
	if !known {
		return ans, UnknownUser
	}
	if !fresh {
		return ans, Stale
	}
	if !s.count(cred.Nonce, cred.Nc) {
		return ans, Replay
	}
	return ans, OK
}

// count records nc for nonce; false when it is not above the last one.
func (s *Server) count(nonce string, nc int) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn, ok := s.seen[nonce]; ok {
		if nc <= sn.nc {
			return false
		}
		sn.nc = nc
		s.seen[nonce] = sn
		return true
	}
	if len(s.seen) >= maxSeen {
		for k, v := range s.seen {
			if now.After(v.expires) {
				delete(s.seen, k)
			}
		}
		if len(s.seen) >= maxSeen {
			return false
		}
	}
	s.seen[nonce] = seenNonce{nc: nc, expires: now.Add(s.lifetime + time.Minute)}
	return true
}

// Prune forgets the nonce counts of nonces past their lifetime.
func (s *Server) Prune() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.seen {
		if now.After(v.expires) {
			delete(s.seen, k)
		}
	}
}
