// Package accounts keeps the unit registered at the trunks that want it
// (peers[].auth.register): one loop per peer sends REGISTER, answers the
// digest challenge with the peer's credentials, refreshes before the
// granted expiry and, after a failure, tries again with a growing, bounded
// backoff. The SIP layer sends the requests (Sender); this package only
// decides what to send and when.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/registrar"
	"github.com/palisade-sbc/palisade/internal/sip/digest"
)

// SubsystemName is the accounts client's name in the unit.
const SubsystemName = "accounts"

// Sender sends a request to a configured peer; the B2BUA's SIP layer
// implements it.
type Sender interface {
	// Contact is the unit's own SIP URI towards the peer (host, port and
	// transport parameter of the interface the peer is reached on); the
	// client puts the account's user name in it.
	Contact(peer string) (sip.Uri, error)
	// Do sends req to the peer (its address or domain, transport and
	// interface) in a new client transaction and returns the final
	// response. It adds Via and Max-Forwards and keeps Request-URI, From,
	// To, Call-ID, CSeq, Contact, Expires and Authorization as given.
	Do(ctx context.Context, peer string, req *sip.Request) (*sip.Response, error)
}

// Client is the registration client (a unit.Subsystem).
type Client struct {
	sender Sender
	log    *slog.Logger
	auth   *digest.Client
	now    func() time.Time

	// Timing (tests shorten them).
	minBackoff, maxBackoff time.Duration
	requestTimeout         time.Duration

	mu     sync.Mutex
	loops  map[string]*loop
	closed bool
}

// New returns a client sending through s.
func New(s Sender, log *slog.Logger) *Client {
	if log == nil {
		log = slog.Default()
	}
	return &Client{
		sender: s, log: log.With("subsystem", SubsystemName), auth: digest.NewClient(), now: time.Now,
		minBackoff: 5 * time.Second, maxBackoff: 5 * time.Minute, requestTimeout: 32 * time.Second,
		loops: make(map[string]*loop),
	}
}

// Name implements unit.Subsystem.
func (c *Client) Name() string { return SubsystemName }

// account is what one peer's configuration asks for.
type account struct {
	peer     string
	user     string
	password string
	realm    string
	domain   string        // Request-URI and AOR host
	expires  time.Duration // asked for
}

func accountsOf(cfg *config.Config) map[string]account {
	out := make(map[string]account)
	for _, p := range cfg.Peers {
		if !p.Auth.Register || p.Auth.Username == "" {
			continue
		}
		dom := p.Domain
		if dom == "" {
			dom = p.Address
			if h, _, err := net.SplitHostPort(p.Address); err == nil {
				dom = h
			}
		}
		exp := p.Auth.Expires.D()
		if exp <= 0 {
			exp = time.Hour
		}
		exp = max(exp, 10*time.Second) // 0 would mean unregister
		out[p.Name] = account{peer: p.Name, user: p.Auth.Username, password: p.Auth.Password,
			realm: p.Auth.Realm, domain: dom, expires: exp}
	}
	return out
}

// Apply starts a registration loop for each peer with auth.register,
// keeps the loops whose account did not change, and stops (and
// unregisters) the others.
func (c *Client) Apply(ctx context.Context, cfg *config.Config) error {
	want := accountsOf(cfg)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("accounts: closed")
	}
	for name, l := range c.loops {
		if a, ok := want[name]; !ok || a != l.acc {
			l.stop()
			delete(c.loops, name)
		}
	}
	for name, a := range want {
		if _, ok := c.loops[name]; !ok {
			c.loops[name] = c.start(a)
		}
	}
	return nil
}

// Drain implements unit.Subsystem.
func (c *Client) Drain(context.Context) error { return nil }

// Close unregisters from every trunk (briefly) and stops the loops.
func (c *Client) Close() error {
	c.mu.Lock()
	loops := c.loops
	c.loops, c.closed = map[string]*loop{}, true
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Add(1)
		go func() { defer wg.Done(); l.stop() }()
	}
	wg.Wait()
	return nil
}

// State is one account's registration as shown in the status.
type State struct {
	Peer      string
	AOR       string
	State     string // registering | registered | failed
	Contact   string
	Expires   time.Time
	LastError string
	Changed   time.Time
}

// States returns the accounts' states, by peer name.
func (c *Client) States() []State {
	c.mu.Lock()
	out := make([]State, 0, len(c.loops))
	for _, l := range c.loops {
		out = append(out, l.state())
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b State) int { return strings.Compare(a.Peer, b.Peer) })
	return out
}

// Registrations is the trunk part of `palisade status registrations`
// (see registrar.Registrar.StatusSource).
func (c *Client) Registrations() []registrar.Registration {
	now := c.now()
	var out []registrar.Registration
	for _, s := range c.States() {
		r := registrar.Registration{Kind: "trunk", AOR: s.AOR, Peer: s.Peer, State: s.State,
			Contact: s.Contact, LastError: s.LastError}
		if s.State == "registered" {
			r.Expires, r.ExpiresIn = s.Expires, max(0, int(s.Expires.Sub(now).Seconds()))
		}
		out = append(out, r)
	}
	return out
}

// loop is one peer's registration.
type loop struct {
	c      *Client
	acc    account
	cancel context.CancelFunc
	done   chan struct{}

	callID string
	cseq   uint32

	mu sync.Mutex
	st State
}

func (c *Client) start(a account) *loop {
	ctx, cancel := context.WithCancel(context.Background())
	l := &loop{c: c, acc: a, cancel: cancel, done: make(chan struct{}), callID: newToken() + "@palisade",
		st: State{Peer: a.peer, AOR: a.user + "@" + a.domain, State: "registering", Changed: c.now()}}
	go l.run(ctx)
	return l
}

func (l *loop) stop() {
	l.cancel()
	<-l.done
}

func (l *loop) state() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

func (l *loop) set(f func(*State)) {
	l.mu.Lock()
	f(&l.st)
	l.st.Changed = l.c.now()
	l.mu.Unlock()
}

func (l *loop) run(ctx context.Context) {
	defer close(l.done)
	log := l.c.log.With("peer", l.acc.peer, "aor", l.acc.user+"@"+l.acc.domain)
	backoff := l.c.minBackoff
	registered := false
	for {
		granted, contact, err := l.register(ctx, l.acc.expires)
		if ctx.Err() != nil {
			break
		}
		var wait time.Duration
		if err != nil {
			registersTotal.WithLabelValues("failed").Inc()
			registeredGauge.WithLabelValues(l.acc.peer).Set(0)
			if registered || l.state().State != "failed" {
				log.Warn("registration at the trunk failed", "err", err, "retry_in", backoff)
			}
			registered = false
			l.set(func(s *State) { s.State, s.LastError, s.Expires = "failed", err.Error(), time.Time{} })
			// full jitter in the upper half keeps many units from retrying in step
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(backoff*2, l.c.maxBackoff)
		} else {
			registersTotal.WithLabelValues("registered").Inc()
			registeredGauge.WithLabelValues(l.acc.peer).Set(1)
			if !registered {
				log.Info("registered at the trunk", "expires", granted)
			}
			registered = true
			backoff = l.c.minBackoff
			exp := l.c.now().Add(granted)
			l.set(func(s *State) { s.State, s.LastError, s.Expires, s.Contact = "registered", "", exp, contact })
			// refresh at 80% of the granted time, so a lost request has
			// time to be retransmitted and retried before the binding ends
			wait = granted * 8 / 10
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
			continue
		}
		break
	}
	registeredGauge.DeleteLabelValues(l.acc.peer)
	if registered {
		// leave the trunk's registrar tidy; bounded, best effort
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, _, err := l.register(uctx, 0); err != nil {
			log.Info("unregistering from the trunk failed", "err", err)
		}
	}
}

// register sends one REGISTER (answering up to two challenges and one 423)
// and returns the granted expiry and the registered contact.
func (l *loop) register(ctx context.Context, expires time.Duration) (time.Duration, string, error) {
	contact, err := l.c.sender.Contact(l.acc.peer)
	if err != nil {
		return 0, "", fmt.Errorf("no contact towards peer %s: %w", l.acc.peer, err)
	}
	contact.User = l.acc.user
	secs := int(expires / time.Second)
	var authRes *sip.Response
	challenges := 0
	for attempt := 0; attempt < 4; attempt++ {
		req := l.build(contact, secs)
		if authRes != nil {
			if err := l.c.auth.Authorize(req, authRes, digest.Credentials{Username: l.acc.user, Password: l.acc.password, Realm: l.acc.realm}); err != nil {
				return 0, "", err
			}
		}
		rctx, cancel := context.WithTimeout(ctx, l.c.requestTimeout)
		res, err := l.c.sender.Do(rctx, l.acc.peer, req)
		cancel()
		if err != nil {
			return 0, "", fmt.Errorf("REGISTER to %s: %w", l.acc.peer, err)
		}
		switch {
		case res.StatusCode == 401 || res.StatusCode == 407:
			// A second challenge after an answer is a refusal, unless it
			// only says our nonce went stale.
			if challenges > 0 && !staleChallenge(res) {
				return 0, "", fmt.Errorf("trunk refused the credentials of %s: %d %s", l.acc.user, res.StatusCode, res.Reason)
			}
			challenges++
			authRes = res
		case res.StatusCode == 423:
			h := res.GetHeader("Min-Expires")
			n, err := strconv.Atoi(strings.TrimSpace(headerVal(h)))
			if err != nil || n <= secs || n > 1<<20 {
				return 0, "", fmt.Errorf("trunk answered 423 without a usable Min-Expires")
			}
			secs = n
		case res.StatusCode >= 200 && res.StatusCode < 300:
			if secs == 0 {
				return 0, "", nil
			}
			g := granted(res, contact, secs)
			if g <= 0 {
				return 0, "", fmt.Errorf("trunk answered 200 without our contact")
			}
			return time.Duration(g) * time.Second, contact.String(), nil
		default:
			return 0, "", fmt.Errorf("trunk answered %d %s", res.StatusCode, res.Reason)
		}
	}
	return 0, "", errors.New("trunk kept challenging")
}

// build makes the next REGISTER of the loop's registration (one Call-ID,
// CSeq counting up, RFC 3261 §10.2).
func (l *loop) build(contact sip.Uri, secs int) *sip.Request {
	l.cseq++
	aor := sip.Uri{Scheme: "sip", User: l.acc.user, Host: l.acc.domain}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: l.acc.domain})
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", newToken())
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	cid := sip.CallIDHeader(l.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: l.cseq, MethodName: sip.REGISTER})
	req.AppendHeader(&sip.ContactHeader{Address: contact})
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(secs)))
	req.SetBody(nil)
	return req
}

// granted reads the expiry the registrar gave our contact: its expires
// parameter in the 200, else the Expires header, else what we asked.
func granted(res *sip.Response, contact sip.Uri, asked int) int {
	want := strings.ToLower(contact.Host) + ":" + strconv.Itoa(contact.Port)
	cs := res.GetHeaders("Contact")
	for _, h := range cs {
		ch, ok := h.(*sip.ContactHeader)
		if !ok || !strings.EqualFold(ch.Address.User, contact.User) ||
			strings.ToLower(ch.Address.Host)+":"+strconv.Itoa(ch.Address.Port) != want {
			continue
		}
		if v, ok := ch.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				return min(n, asked)
			}
		}
		break
	}
	if n, err := strconv.Atoi(strings.TrimSpace(headerVal(res.GetHeader("Expires")))); err == nil && n >= 0 {
		return min(n, asked)
	}
	// some registrars list no contacts: trust the request
	return asked
}

func staleChallenge(res *sip.Response) bool {
	name := "WWW-Authenticate"
	if res.StatusCode == 407 {
		name = "Proxy-Authenticate"
	}
	for _, h := range res.GetHeaders(name) {
		if ch, err := digest.ParseChallenge(h.Value()); err == nil && ch.Stale {
			return true
		}
	}
	return false
}

func headerVal(h sip.Header) string {
	if h == nil {
		return ""
	}
	return h.Value()
}

func newToken() string {
	return strconv.FormatUint(rand.Uint64(), 36)
}
