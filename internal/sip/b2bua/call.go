package b2bua

import (
	"context"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// Phase is where a call is in its life.
type Phase string

const (
	PhaseEarly     Phase = "early"
	PhaseConfirmed Phase = "confirmed"
	PhaseEnded     Phase = "ended"
)

// Leg is one side's dialog as plain data (serialisable, no live handles):
// what a unit taking over the call would need to continue it.
type Leg struct {
	Interface    string    `json:"interface"`
	Transport    string    `json:"transport"` // udp | tcp | tls
	Peer         string    `json:"peer,omitempty"`
	CallID       string    `json:"call_id"`
	LocalTag     string    `json:"local_tag"`
	RemoteTag    string    `json:"remote_tag"`
	LocalURI     sip.Uri   `json:"local_uri"`
	LocalName    string    `json:"local_name,omitempty"`
	RemoteURI    sip.Uri   `json:"remote_uri"`
	RemoteName   string    `json:"remote_name,omitempty"`
	LocalCSeq    uint32    `json:"local_cseq"`
	RemoteCSeq   uint32    `json:"remote_cseq"`
	RemoteTarget sip.Uri   `json:"remote_target"`
	RouteSet     []sip.Uri `json:"route_set,omitempty"`
	// Flow is the remote transport address of the leg: in-dialog requests
	// go there over the same connection (TCP/TLS) in both directions.
	Flow       string `json:"flow"`
	ServerName string `json:"server_name,omitempty"`
	InviteCSeq uint32 `json:"invite_cseq"` // CSeq of the INVITE that set the dialog up
}

// CallState is the serialisable state of one call.
type CallState struct {
	ID       string    `json:"id"`
	Phase    Phase     `json:"phase"`
	Legs     [2]Leg    `json:"legs"` // media.SideA (caller) and media.SideB
	Started  time.Time `json:"started"`
	Answered time.Time `json:"answered,omitzero"`
	Reason   string    `json:"reason,omitempty"`
}

// call is a call in progress: its state, two legs and the media.
type call struct {
	svc  *Service
	logp atomic.Pointer[slog.Logger]
	mu   sync.Mutex
	st   CallState // Legs is filled by state(): the legs live in legs

	legs  [2]*leg // media.SideA (the caller's at first) and media.SideB
	media media.Call
	rt    *runtime
	ended atomic.Bool
	rec   callRecord                    // cdr.go
	xfer  atomic.Pointer[transferState] // refer.go: made on first use

	canceled   chan struct{} // the caller's CANCEL came (side A, before the answer)
	cancelOnce sync.Once
	lateOffer  bool // A sent no SDP: B's 2xx carries the offer, A's ACK the answer
	// offerMade: A sent no SDP and the far peer requires an offer: the unit
	// made one (offer.go); B's answer becomes the offer in A's 2xx, A's ACK
	// answers it. madeAnswered: B's answer has reached the relay.
	offerMade, madeAnswered bool
	// hop is what the media was set up for (hopmedia.go).
	hop hopMedia

	// re-INVITE relay in progress: the ACK of the sender goes to the other leg
	reinv *reinvite
	// hungUp marks the legs byeSide has ended (BYE or CANCEL sent).
	hungUp [2]bool

	// ctx is the call's context: cancelled when the call ends (end), so
	// that what still works for it (a transfer's new leg ringing) stops.
	ctx  context.Context
	stop context.CancelFunc

	// self is what transaction hooks hold instead of the call: a separate
	// object (a pointer into the call would keep all of it alive), cleared
	// when the call ends.
	self *atomic.Pointer[call]
}

// ref returns the reference transaction hooks use to reach the call.
func (c *call) ref() *atomic.Pointer[call] { return c.self }

type reinvite struct {
	from media.Side
	out  *sip.Request // the re-INVITE sent on the other leg
	resp *sip.Response
	flow sdpFlow
	dst  routing.Target
}

// logger is the per-call logger (with call_id), made on first use: most
// calls never log.
func (c *call) logger() *slog.Logger {
	if l := c.logp.Load(); l != nil {
		return l
	}
	l := c.svc.log.With("call_id", c.st.ID)
	c.logp.Store(l)
	return l
}

// leg returns the state of side s.
func (c *call) leg(s media.Side) *Leg { return &c.legs[s].Leg }

// state returns a copy of the call's state with its legs' dialogs (c.mu
// held).
func (c *call) state() CallState {
	st := c.st
	for i, l := range c.legs {
		if l != nil {
			st.Legs[i] = l.Leg
		}
	}
	return st
}

// callMap holds calls by (Call-ID, local tag), sharded so that no lock is
// shared by all calls.
type callMap struct {
	seed   maphash.Seed
	shards [64]callShard
	n      atomic.Int64

	// idle is closed (and replaced) whenever n drops to zero: Drain waits
	// on it instead of polling.
	idleMu sync.Mutex
	idle   chan struct{}
}

// added counts a call in.
func (cm *callMap) added() { cm.n.Add(1) }

// removed counts a call out and wakes who waits for none to be left.
func (cm *callMap) removed() {
	if cm.n.Add(-1) != 0 {
		return
	}
	cm.idleMu.Lock()
	if cm.idle != nil {
		close(cm.idle)
		cm.idle = nil
	}
	cm.idleMu.Unlock()
}

// idleCh returns a channel closed the next time no call is left; check
// count after taking it.
func (cm *callMap) idleCh() <-chan struct{} {
	cm.idleMu.Lock()
	defer cm.idleMu.Unlock()
	if cm.idle == nil {
		cm.idle = make(chan struct{})
	}
	return cm.idle
}

type callShard struct {
	mu sync.RWMutex
	m  map[string]*call
}

func (cm *callMap) init() {
	cm.seed = maphash.MakeSeed()
	for i := range cm.shards {
		cm.shards[i].m = make(map[string]*call)
	}
}

func dialogKey(callID, localTag string) string { return callID + "\x00" + localTag }

func (cm *callMap) shard(k string) *callShard {
	return &cm.shards[maphash.String(cm.seed, k)%uint64(len(cm.shards))]
}

func (cm *callMap) get(k string) *call {
	sh := cm.shard(k)
	sh.mu.RLock()
	c := sh.m[k]
	sh.mu.RUnlock()
	return c
}

func (cm *callMap) put(k string, c *call) {
	sh := cm.shard(k)
	sh.mu.Lock()
	sh.m[k] = c
	sh.mu.Unlock()
}

func (cm *callMap) del(k string) {
	sh := cm.shard(k)
	sh.mu.Lock()
	delete(sh.m, k)
	sh.mu.Unlock()
}

func (cm *callMap) count() int { return int(cm.n.Load()) }

func (cm *callMap) all() []*call {
	seen := map[*call]bool{}
	var out []*call
	for i := range cm.shards {
		sh := &cm.shards[i]
		sh.mu.RLock()
		for _, c := range sh.m {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
		sh.mu.RUnlock()
	}
	return out
}

// newID returns a random identifier: tags, Call-IDs and call ids that say
// nothing about the unit or the other leg.
func newID() string {
	return strconv.FormatUint(rand.Uint64(), 36) + strconv.FormatUint(rand.Uint64()&0xffffffff, 36)
}

// A transfer (transfer.go) swaps a leg, its endpoint and the media call under
// c.mu, so code that does not hold c.mu reads them through these.

// endpointOf returns side's endpoint.
func (c *call) endpointOf(s media.Side) *endpoint { return c.legAt(s).endpoint() }

// legOf returns a copy of side's dialog state.
func (c *call) legOf(s media.Side) Leg { return c.legAt(s).dialog() }

// mediaOf returns the call's media session.
func (c *call) mediaOf() media.Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.media
}

// context is the call's context (Background for a call built without
// one, in tests).
func (c *call) context() context.Context {
	if c.ctx != nil {
		return c.ctx
	}
	return context.Background()
}

// newCallState returns a call of s with its context, before it is
// published.
func (s *Service) newCallState(rt *runtime) *call {
	c := &call{svc: s, rt: rt, canceled: make(chan struct{}), self: new(atomic.Pointer[call])}
	c.setLeg(media.SideA, &leg{})
	c.setLeg(media.SideB, &leg{})
	c.self.Store(c)
	c.ctx, c.stop = context.WithCancel(s.base)
	return c
}
