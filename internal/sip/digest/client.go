// Package digest is SIP digest authentication (RFC 3261 §22, RFC 7616,
// RFC 8760) for Palisade: the client side answers the 401/407 challenges of
// trunks with a peer's configured credentials, the server side challenges
// and verifies the phones of the local registrar. MD5 and SHA-256 with
// qop=auth and nonce counts; the hashing is github.com/icholy/digest.
package digest

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Credentials are what the unit answers a challenge with (peers[].auth).
type Credentials struct {
	Username string
	Password string
	// Realm, when set, restricts the answer to challenges of that realm;
	// empty answers any realm.
	Realm string
}

// ErrNoChallenge means the response carries no challenge the client can
// answer (no WWW-/Proxy-Authenticate, another scheme, an unknown
// algorithm, a realm other than the configured one).
var ErrNoChallenge = errors.New("digest: no usable challenge")

// Client answers challenges. It remembers a nonce count per nonce so that a
// nonce reused for later requests (a trunk that keeps its nonce across
// re-registrations) gets increasing nc values. Safe for concurrent use.
type Client struct {
	mu     sync.Mutex
	counts map[string]int
}

// maxNonces bounds the remembered nonces; old ones are forgotten at once
// (the server answers a reused, forgotten nonce with a new challenge).
const maxNonces = 1024

// NewClient returns a client with no nonces remembered.
func NewClient() *Client { return &Client{counts: make(map[string]int)} }

// Authorize adds to req the Authorization (for a 401) or
// Proxy-Authorization (for a 407) answering res's challenge with cred,
// replacing an earlier one of the same name. The caller then sends req
// again in a new transaction with the next CSeq. Of several challenges
// SHA-256 is preferred over MD5 (RFC 8760).
func (c *Client) Authorize(req *sip.Request, res *sip.Response, cred Credentials) error {
	inName, outName := "WWW-Authenticate", "Authorization"
	if res.StatusCode == 407 {
		inName, outName = "Proxy-Authenticate", "Proxy-Authorization"
	}
	chal := pickChallenge(res.GetHeaders(inName), cred.Realm)
	if chal == nil {
		return fmt.Errorf("%w in the %d answer to %s", ErrNoChallenge, res.StatusCode, req.Method)
	}
	nc := c.next(chal.Nonce)
	uri := req.Recipient.String()
	creds, err := digest.Digest(chal, digest.Options{
		Method: string(req.Method), URI: uri, Count: nc,
		Username: cred.Username, Password: cred.Password,
	})
	if err != nil {
		return fmt.Errorf("digest: answering the challenge of realm %q: %w", chal.Realm, err)
	}
	req.RemoveHeader(outName)
	req.AppendHeader(sip.NewHeader(outName, creds.String()))
	return nil
}

// next returns the next nonce count for nonce.
func (c *Client) next(nonce string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = make(map[string]int)
	}
	if _, ok := c.counts[nonce]; !ok && len(c.counts) >= maxNonces {
		clear(c.counts)
	}
	c.counts[nonce]++
	return c.counts[nonce]
}

// pickChallenge returns the best digest challenge among hs that the client
// can answer, or nil.
func pickChallenge(hs []sip.Header, realm string) *digest.Challenge {
	var best *digest.Challenge
	bestRank := 0
	for _, h := range hs {
		chal, err := ParseChallenge(h.Value())
		if err != nil {
			continue
		}
		if realm != "" && chal.Realm != realm {
			continue
		}
		if r := rank(chal); r > bestRank {
			best, bestRank = chal, r
		}
	}
	return best
}

// ParseChallenge parses a WWW-Authenticate or Proxy-Authenticate value and
// normalises what servers write loosely (algorithm case, spaces in qop).
func ParseChallenge(v string) (*digest.Challenge, error) {
	chal, err := digest.ParseChallenge(strings.TrimSpace(v))
	if err != nil {
		return nil, err
	}
	chal.Algorithm = strings.ToUpper(strings.TrimSpace(chal.Algorithm))
	var qops []string
	for _, q := range chal.QOP {
		if q = strings.ToLower(strings.TrimSpace(q)); q != "" {
			qops = append(qops, q)
		}
	}
	chal.QOP = qops
	if chal.Nonce == "" {
		return nil, errors.New("digest: challenge without nonce")
	}
	return chal, nil
}

// rank orders the challenges the client can answer: 0 = cannot.
func rank(chal *digest.Challenge) int {
	if len(chal.QOP) > 0 && !chal.SupportsQOP("auth") {
		return 0 // auth-int only: the body is not ours to hash here
	}
	if chal.Userhash {
		return 0
	}
	switch chal.Algorithm {
	case "SHA-256":
		return 3
	case "", "MD5":
		return 2
	}
	return 0
}
