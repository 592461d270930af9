package transport

import (
	"bytes"
	"net"
	"sync"
	"time"
	"unsafe"

	"github.com/emiago/sipgo/sip"
)

// Traces show a received message as it came off the wire. Serialising the
// parsed message again cost a tenth of the unit's CPU under load, so the
// datagram itself is kept: each UDP reader reads through a rawReader, which
// copies the datagram when the KeepRaw hook asks for it and hands sipgo a
// source address whose String() is a string of its own. sipgo stores that
// very string as the message's Source(), so the first transport handler
// (takeRaw, before the transaction layer's) finds the datagram by the
// string's address and files it under the message; Raw takes it out again.
// Messages nobody traces (retransmissions sipgo absorbs) leave their
// datagram behind for at most two rotations of the table (rawKeep).
// Stream transports (TCP, TLS) are not covered: a read may hold parts of
// several messages; their messages are serialised as before.

// rawKeep is how long an unclaimed datagram is kept at least (and at most
// twice that).
const rawKeep = time.Second

// rawTable hands datagrams from the reading goroutine to the message
// parsed from them, and from there to whoever traces the message.
type rawTable struct {
	mu sync.Mutex
	// pending: datagrams read, by the address of their source string.
	pending map[uintptr][]byte
	// cur, old: datagrams of parsed messages, until taken or rotated out.
	// The key keeps the message alive, so its address is never reused
	// while its entry exists.
	cur, old map[sip.Message][]byte
	rotated  time.Time
}

func newRawTable() *rawTable {
	return &rawTable{pending: map[uintptr][]byte{}, cur: map[sip.Message][]byte{},
		old: map[sip.Message][]byte{}, rotated: time.Now()}
}

func strKey(s string) uintptr { return uintptr(unsafe.Pointer(unsafe.StringData(s))) }

// takeRaw runs first for every message the transport layer parsed, in the
// goroutine that read it.
func (e *Endpoint) takeRaw(msg sip.Message) {
	t := e.raw
	key := strKey(msg.Source())
	t.mu.Lock()
	defer t.mu.Unlock()
	raw, ok := t.pending[key]
	if !ok {
		return
	}
	delete(t.pending, key)
	if now := time.Now(); now.Sub(t.rotated) >= rawKeep {
		t.old, t.cur = t.cur, make(map[sip.Message][]byte, len(t.cur))
		t.rotated = now
	}
	t.cur[msg] = raw
}

// Raw returns the bytes msg was parsed from and forgets them: the caller
// owns them. It returns nil for messages sent, read from a stream, or read
// while KeepRaw said no.
func (e *Endpoint) Raw(msg sip.Message) []byte {
	t := e.raw
	t.mu.Lock()
	defer t.mu.Unlock()
	if raw, ok := t.cur[msg]; ok {
		delete(t.cur, msg)
		return raw
	}
	if raw, ok := t.old[msg]; ok {
		delete(t.old, msg)
		return raw
	}
	return nil
}

// rawReader is one UDP reader's view of the socket (one per reading
// goroutine: pendingKey is that goroutine's last datagram).
type rawReader struct {
	net.PacketConn
	ep         *Endpoint
	pendingKey uintptr
}

// srcAddr is a source address whose String() is fixed, so that sipgo's
// Source() is the very string filed in pending.
type srcAddr struct {
	net.Addr
	s string
}

func (a *srcAddr) String() string { return a.s }

func (r *rawReader) ReadFrom(b []byte) (int, net.Addr, error) {
	t := r.ep.raw
	if r.pendingKey != 0 {
		// not parsed (keep-alive, garbage): the handler never came
		t.mu.Lock()
		delete(t.pending, r.pendingKey)
		t.mu.Unlock()
		r.pendingKey = 0
	}
	n, addr, err := r.PacketConn.ReadFrom(b)
	if err != nil || addr == nil || r.ep.hooks.KeepRaw == nil || !r.ep.hooks.KeepRaw() {
		return n, addr, err
	}
	a := &srcAddr{Addr: addr, s: addr.String()}
	r.pendingKey = strKey(a.s)
	raw := bytes.Clone(b[:n])
	t.mu.Lock()
	t.pending[r.pendingKey] = raw
	t.mu.Unlock()
	return n, a, nil
}
