package transport

import (
	"sync"

	"github.com/emiago/sipgo/sip"
)

// sipgo hands every received response to its transaction in a goroutine of
// its own, so a 180 and a 200 read back to back from one TLS or TCP
// connection race: when the 200 wins, the transaction is already accepted
// and sipgo drops the 180 without a word (it is neither traced nor relayed).
// The transport layer itself calls its handlers in wire order, one message
// after the other, so provisional responses are also taken there (onWire),
// and Ordered merges both views: provisional responses in the order they
// arrived, each once, and the final response only after every provisional
// response read before it.

// onWire runs in the reading goroutine of a connection, before the next
// message of that connection is read.
func (e *Endpoint) onWire(msg sip.Message) {
	r, ok := msg.(*sip.Response)
	if !ok || r.StatusCode <= 100 || r.StatusCode >= 300 {
		return
	}
	if r.StatusCode >= 200 {
		if e.hooks.OnAnswer != nil {
			e.hooks.OnAnswer(r) // the B2BUA: a 2xx for an INVITE it gave up
		}
		return
	}
	key, err := sip.ClientTxKeyMake(r)
	if err != nil {
		return
	}
	if v, ok := e.prov.Load(key); ok {
		select {
		case v.(*Ordered).wire <- r:
		default: // the call does not keep up: sipgo's copy may still come
		}
	}
}

// Ordered is the response stream of one client INVITE transaction in wire
// order; Done closes once the transaction has ended and everything it
// received was handed over.
type Ordered struct {
	ep   *Endpoint
	tx   *sip.ClientTx
	key  string
	wire chan *sip.Response // provisional responses as read from the wire
	out  chan *sip.Response
	done chan struct{}
	quit chan struct{}
	once sync.Once
	seen map[*sip.Response]bool // both views carry the same message
}

// Watch starts taking req's provisional responses off the wire; call it
// before req is sent (a fast 180 comes right after), then Start with the
// request's transaction. Stop must be called when the caller stops reading.
func (e *Endpoint) Watch(req *sip.Request) *Ordered {
	o := &Ordered{ep: e, wire: make(chan *sip.Response, 16),
		out: make(chan *sip.Response), done: make(chan struct{}), quit: make(chan struct{}),
		seen: map[*sip.Response]bool{}}
	if key, err := sip.ClientTxKeyMake(req); err == nil {
		o.key = key
		e.prov.Store(key, o)
	}
	return o
}

// OrderedOf is Watch and Start for a transaction already sent.
func (e *Endpoint) OrderedOf(tx *sip.ClientTx) *Ordered {
	o := e.Watch(tx.Origin())
	o.Start(tx)
	return o
}

// Start merges the wire's view with tx's.
func (o *Ordered) Start(tx *sip.ClientTx) {
	o.tx = tx
	if tx.Key() != o.key { // sipgo keyed it differently: follow sipgo
		o.ep.prov.CompareAndDelete(o.key, o)
		o.key = tx.Key()
		o.ep.prov.Store(o.key, o)
	}
	go o.run()
}

// Responses delivers the transaction's responses in wire order.
func (o *Ordered) Responses() <-chan *sip.Response { return o.out }

// Done is closed when the transaction ended and all its responses were delivered.
func (o *Ordered) Done() <-chan struct{} { return o.done }

func (o *Ordered) Stop() {
	o.once.Do(func() {
		close(o.quit)
		if o.tx == nil { // never started
			o.ep.prov.CompareAndDelete(o.key, o)
		}
	})
}

func (o *Ordered) run() {
	defer close(o.done)
	defer o.ep.prov.CompareAndDelete(o.key, o)
	for {
		select {
		case r := <-o.wire:
			if !o.send(r) {
				return
			}
		case r := <-o.tx.Responses():
			if r.StatusCode >= 200 && !o.flush() {
				return
			}
			if !o.send(r) {
				return
			}
		case <-o.tx.Done():
			o.flush()
			return
		case <-o.quit:
			return
		}
	}
}

// flush delivers the provisional responses already read from the wire.
func (o *Ordered) flush() bool {
	for {
		select {
		case r := <-o.wire:
			if !o.send(r) {
				return false
			}
		default:
			return true
		}
	}
}

func (o *Ordered) send(r *sip.Response) bool {
	if o.seen[r] {
		return true
	}
	o.seen[r] = true
	select {
	case o.out <- r:
		return true
	case <-o.quit:
		return false
	}
}
