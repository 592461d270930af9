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
	var raw []byte
	if s, ok := e.streams.Load(key); ok {
		if raw = s.(*rawStream).next(msg); raw == nil || !e.hooks.KeepRaw() {
			return
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if raw == nil {
		var ok bool
		if raw, ok = t.pending[key]; !ok {
			return
		}
		delete(t.pending, key)
	}
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

// Serialize returns msg as sipgo writes it on the wire, in a slice the
// caller owns (one allocation of the exact size; the buffer is reused).
func Serialize(msg sip.Message) []byte {
	buf := serializeBufs.Get().(*bytes.Buffer)
	buf.Reset()
	msg.StringWrite(buf)
	raw := bytes.Clone(buf.Bytes())
	serializeBufs.Put(buf)
	return raw
}

var serializeBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

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

// On a stream (TLS, TCP) a read may hold parts of several messages, so
// rawStream cuts what it reads into messages the way sipgo's stream parser
// does (leading CRLFs skipped, headers up to the empty line, Content-Length
// bytes of body) and queues them; sipgo parses the same bytes in the same
// goroutine and hands each message to takeRaw, which takes the oldest one
// of the connection, found by the connection's source string (sipgo keeps
// one per connection). A start line that does not match the parsed message
// means the framing went astray: the queue is dropped and such messages
// are serialised again, as without this.

// maxQueued bounds the messages waiting for their parsed twin.
const maxQueued = 64

type rawStream struct {
	net.Conn
	ep   *Endpoint
	src  *srcAddr
	dst  *srcAddr // local address, its string made once too
	acc  []byte   // read, not yet a whole message
	msgs [][]byte // whole messages, oldest first
	off  bool     // framing given up (bare LF line ends): serialise
	once sync.Once
}

// rawStreamConn wraps a connection before sipgo reads it.
func (e *Endpoint) rawStreamConn(c net.Conn) net.Conn {
	if e.hooks.KeepRaw == nil {
		return c
	}
	ra, la := c.RemoteAddr(), c.LocalAddr()
	s := &rawStream{Conn: c, ep: e, src: &srcAddr{Addr: ra, s: ra.String()}, dst: &srcAddr{Addr: la, s: la.String()}}
	e.streams.Store(strKey(s.src.s), s)
	return s
}

// RemoteAddr's string is the source string of every message (sipgo asks
// for it once per connection).
func (s *rawStream) RemoteAddr() net.Addr { return s.src }

// LocalAddr as well: sipgo's connection references log both addresses,
// formatting them on every use of the connection.
func (s *rawStream) LocalAddr() net.Addr { return s.dst }

func (s *rawStream) Close() error {
	s.once.Do(func() { s.ep.streams.CompareAndDelete(strKey(s.src.s), s) })
	return s.Conn.Close()
}

func (s *rawStream) Read(b []byte) (int, error) {
	n, err := s.Conn.Read(b)
	if n > 0 {
		s.frame(b[:n])
	}
	return n, err
}

func (s *rawStream) frame(data []byte) {
	if s.off {
		return
	}
	s.acc = append(s.acc, data...)
	for {
		i := 0
		for i+1 < len(s.acc) && s.acc[i] == '\r' && s.acc[i+1] == '\n' {
			i += 2
		}
		end := bytes.Index(s.acc[i:], []byte("\n\r\n"))
		heads := s.acc[i:]
		if end >= 0 {
			heads = heads[:end+1]
		}
		if bytes.Contains(heads, []byte("\n\n")) || end == 0 || end > 0 && s.acc[i+end-1] != '\r' {
			s.off, s.acc, s.msgs = true, nil, nil // line ends sipgo reads but we do not cut
			return
		}
		if end < 0 {
			break
		}
		end-- // at the \r of \r\n\r\n
		head := s.acc[i : i+end+2]
		total := i + end + 4 + contentLength(head)
		if total > len(s.acc) {
			break
		}
		if len(s.msgs) == maxQueued {
			s.msgs = s.msgs[1:]
		}
		s.msgs = append(s.msgs, bytes.Clone(s.acc[i:total]))
		s.acc = s.acc[total:]
	}
	if len(s.acc) == 0 {
		s.acc = nil
	} else if len(s.acc) > 4*sip.ParseMaxMessageLength {
		s.acc, s.msgs = nil, nil // no end in sight: sipgo gives up as well
	}
}

// contentLength reads the Content-Length (or l) header of a header block;
// 0 when there is none or it does not read.
func contentLength(head []byte) int {
	for len(head) > 0 {
		line := head
		if j := bytes.IndexByte(head, '\n'); j >= 0 {
			line, head = head[:j], head[j+1:]
		} else {
			head = nil
		}
		name, val, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		name = bytes.TrimSpace(name)
		if !bytes.EqualFold(name, []byte("content-length")) && !bytes.EqualFold(name, []byte("l")) {
			continue
		}
		n := 0
		for _, c := range bytes.TrimSpace(val) {
			if c < '0' || c > '9' || n > 1<<24 {
				return 0
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	return 0
}

// next takes the oldest message read if msg was parsed from it.
func (s *rawStream) next(msg sip.Message) []byte {
	if len(s.msgs) == 0 {
		return nil
	}
	raw := s.msgs[0]
	s.msgs[0] = nil
	s.msgs = s.msgs[1:]
	if !startsLike(raw, msg) || !bytes.HasSuffix(raw, msg.Body()) {
		s.msgs = nil
		return nil
	}
	return raw
}

// startsLike reports whether raw's start line is msg's.
func startsLike(raw []byte, msg sip.Message) bool {
	switch m := msg.(type) {
	case *sip.Request:
		return len(raw) > len(m.Method) && string(raw[:len(m.Method)]) == string(m.Method) && raw[len(m.Method)] == ' '
	case *sip.Response:
		var code [3]byte
		c := m.StatusCode
		code[0], code[1], code[2] = byte('0'+c/100%10), byte('0'+c/10%10), byte('0'+c%10)
		return len(raw) > 12 && string(raw[:8]) == "SIP/2.0 " && string(raw[8:11]) == string(code[:]) && raw[11] == ' '
	}
	return false
}
