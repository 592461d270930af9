package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
)

// The media calls have their own peers so that the dial plan can send them
// to their own trunk while sipp's calls keep the default route.
const (
	mediaPBXIP   = "127.0.0.97" // sipgo PBX placing the media calls
	mediaTrunkIP = "127.0.0.98" // sipgo trunk answering them
	mediaUser    = "4930555"    // Request-URI user prefix; the call's index follows
	rtpSize      = 172          // 12 bytes header + 160 bytes PCMA (20 ms)
	rtpPeriod    = 20 * time.Millisecond
)

var sdpConn = regexp.MustCompile(`(?s)c=IN IP4 ([0-9.]+).*?m=audio ([0-9]+) `)

// stream counts one direction of one call. The sender puts a 32-bit
// sequence number in the payload (RTP's 16 bits wrap in a 30-minute soak),
// so the receiver can tell duplicates and reordering exactly.
type stream struct {
	conn *net.UDPConn // the sending socket
	dst  netip.AddrPort
	ssrc uint32
	sent atomic.Uint64

	mu        sync.Mutex
	seen      []uint64 // bitset over the sequence numbers received
	received  uint64
	dups      uint64
	reordered uint64
	highest   uint32
}

func (s *stream) packet(seq uint32) []byte {
	pkt := make([]byte, rtpSize)
	pkt[0], pkt[1] = 0x80, 8 // RTP version 2, PCMA
	binary.BigEndian.PutUint16(pkt[2:], uint16(seq))
	binary.BigEndian.PutUint32(pkt[4:], seq*160)
	binary.BigEndian.PutUint32(pkt[8:], s.ssrc)
	binary.BigEndian.PutUint32(pkt[12:], seq)
	return pkt
}

func (s *stream) got(pkt []byte) {
	if len(pkt) != rtpSize || binary.BigEndian.Uint32(pkt[8:]) != s.ssrc {
		return
	}
	seq := binary.BigEndian.Uint32(pkt[12:])
	s.mu.Lock()
	defer s.mu.Unlock()
	w := int(seq / 64)
	for len(s.seen) <= w {
		s.seen = append(s.seen, 0)
	}
	if s.seen[w]&(1<<(seq%64)) != 0 {
		s.dups++
		return
	}
	s.seen[w] |= 1 << (seq % 64)
	s.received++
	if seq < s.highest {
		s.reordered++
	}
	s.highest = max(s.highest, seq)
}

// mediaCall is one long-lived call: the PBX side and the trunk side each
// send to the relay and receive what the other side sent.
type mediaCall struct {
	n         int
	pbxRTP    *net.UDPConn
	trunkRTP  *net.UDPConn
	toTrunk   stream // PBX → trunk
	toPBX     stream // trunk → PBX
	sess      *sipgo.DialogClientSession
	answered  chan struct{} // the trunk saw the INVITE and answered
	up        bool
	byeFailed bool
}

// mediaSoak is the set of media calls with the two sipgo user agents.
type mediaSoak struct {
	calls          []*mediaCall
	pbxPort        int
	trunkPort      int
	pbx, trunk     *sipgo.UserAgent
	pbxConn, trkCn net.PacketConn
	dc             *sipgo.DialogClientCache
	ds             *sipgo.DialogServerCache
	stop           chan struct{}
	wg             sync.WaitGroup
	setupErr       atomic.Value
}

// addMediaPeers adds the media peers and the dial plan rule that routes
// the media PBX's calls to the media trunk. The peers come after sipp's,
// so the default route of sipp's calls (first ITSP peer) is unchanged.
func addMediaPeers(cfg *config.Config, pbxPort, trunkPort int) {
	cfg.Peers = append(cfg.Peers,
		config.Peer{Name: "pbx-media", Kind: "pbx", Interface: "inside", Address: fmt.Sprintf("%s:%d", mediaPBXIP, pbxPort), Transport: "udp"},
		config.Peer{Name: "itsp-media", Kind: "itsp", Interface: "outside", Address: fmt.Sprintf("%s:%d", mediaTrunkIP, trunkPort), Transport: "udp"},
	)
	cfg.DialPlan.Rules = append(cfg.DialPlan.Rules, config.DialRule{
		Name: "soak-media", Source: "pbx-media", ForwardTo: []config.Forward{{Peer: "itsp-media"}},
	})
}

func newMediaSoak() *mediaSoak {
	return &mediaSoak{pbxPort: freePort(mediaPBXIP), trunkPort: freePort(mediaTrunkIP), stop: make(chan struct{})}
}

func sdpFor(ip string, port int) []byte {
	return []byte("v=0\r\no=- 1 1 IN IP4 " + ip + "\r\ns=soak\r\nc=IN IP4 " + ip + "\r\nt=0 0\r\nm=audio " +
		strconv.Itoa(port) + " RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=ptime:20\r\n")
}

func mediaAddr(body []byte) (netip.AddrPort, error) {
	m := sdpConn.FindStringSubmatch(string(body))
	if m == nil {
		return netip.AddrPort{}, fmt.Errorf("SDP without a media address: %q", body)
	}
	return netip.ParseAddrPort(m[1] + ":" + m[2])
}

func listenRTP(ip string) (*net.UDPConn, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(1 << 20)
	return c, nil
}

// serveUA starts a sipgo user agent serving UDP on ip:port with a client
// that sends from that socket, as a real PBX or trunk does. setup gets
// both before the first message can arrive.
func serveUA(name, ip string, port int, setup func(*sipgo.Server, *sipgo.Client)) (*sipgo.UserAgent, net.PacketConn, error) {
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname(ip))
	if err != nil {
		return nil, nil, err
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		return nil, nil, err
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname(ip), sipgo.WithClientPort(port), sipgo.WithClientConnectionAddr(addr))
	if err != nil {
		return nil, nil, err
	}
	setup(srv, cli)
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("media %s: %w", name, err)
	}
	go srv.ServeUDP(conn)
	// sipgo adds the socket to its pool in the serving goroutine; a request
	// sent before that would make the client bind a second socket.
	for i := 0; ; i++ {
		if c, _ := ua.TransportLayer().GetConnection("udp", addr); c != nil {
			c.TryClose()
			break
		}
		if i == 5000 {
			return nil, nil, fmt.Errorf("media %s: the UDP socket never reached sipgo's pool", name)
		}
		time.Sleep(time.Millisecond)
	}
	return ua, conn, nil
}

// answerBye answers a BYE the dialog cache does not know with 481.
func answerBye(read func(*sip.Request, sip.ServerTransaction) error) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if read(req, tx) != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "No dialog", nil))
		}
	}
}

// start places n calls through the unit's inside listener at dst and
// starts their RTP. Calls that fail are reported, not fatal.
func (m *mediaSoak) start(n int, dst string) error {
	if n <= 0 {
		return nil
	}
	for i := range n {
		c := &mediaCall{n: i, answered: make(chan struct{})}
		c.toTrunk.ssrc, c.toPBX.ssrc = 0x50a10000+uint32(i), 0x50b20000+uint32(i)
		var err error
		if c.pbxRTP, err = listenRTP(mediaPBXIP); err != nil {
			return err
		}
		if c.trunkRTP, err = listenRTP(mediaTrunkIP); err != nil {
			return err
		}
		c.toTrunk.conn, c.toPBX.conn = c.pbxRTP, c.trunkRTP
		m.calls = append(m.calls, c)
	}
	var err error
	m.trunk, m.trkCn, err = serveUA("soak-trunk", mediaTrunkIP, m.trunkPort, func(srv *sipgo.Server, cli *sipgo.Client) {
		m.ds = sipgo.NewDialogServerCache(cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "trunk", Host: mediaTrunkIP, Port: m.trunkPort}})
		srv.OnInvite(m.onInvite)
		srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = m.ds.ReadAck(req, tx) })
		srv.OnBye(answerBye(m.ds.ReadBye))
	})
	if err != nil {
		return err
	}
	m.pbx, m.pbxConn, err = serveUA("soak-pbx", mediaPBXIP, m.pbxPort, func(srv *sipgo.Server, cli *sipgo.Client) {
		m.dc = sipgo.NewDialogClientCache(cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "pbx", Host: mediaPBXIP, Port: m.pbxPort}})
		srv.OnBye(answerBye(m.dc.ReadBye))
	})
	if err != nil {
		return err
	}

	host, port, _ := net.SplitHostPort(dst)
	p, _ := strconv.Atoi(port)
	for _, c := range m.calls {
		if err := m.place(c, host, p); err != nil {
			fmt.Printf("soak: media call %d: %v\n", c.n, err)
		}
	}
	for _, c := range m.calls {
		if !c.up {
			continue
		}
		for _, s := range []*stream{&c.toTrunk, &c.toPBX} {
			m.wg.Add(1)
			go m.receive(s, map[*stream]*net.UDPConn{&c.toTrunk: c.trunkRTP, &c.toPBX: c.pbxRTP}[s])
		}
	}
	m.wg.Add(1)
	go m.send()
	return nil
}

func (m *mediaSoak) place(c *mediaCall, host string, port int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	u := sip.Uri{Scheme: "sip", User: fmt.Sprintf("%s%03d", mediaUser, c.n), Host: host, Port: port}
	sess, err := m.dc.Invite(ctx, u, sdpFor(mediaPBXIP, c.pbxRTP.LocalAddr().(*net.UDPAddr).Port), sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		return err
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		if e, ok := m.setupErr.Load().(error); ok {
			return fmt.Errorf("%w (trunk: %v)", err, e)
		}
		return err
	}
	if c.toTrunk.dst, err = mediaAddr(sess.InviteResponse.Body()); err != nil {
		return err
	}
	if err := sess.Ack(ctx); err != nil {
		return err
	}
	select {
	case <-c.answered:
	case <-ctx.Done():
		return fmt.Errorf("the trunk never answered")
	}
	c.sess, c.up = sess, true
	return nil
}

// onInvite answers a media call at the trunk, with the call's own RTP
// socket, and remembers where the relay wants the trunk's RTP.
func (m *mediaSoak) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if req.To() != nil {
		if tag, _ := req.To().Params.Get("tag"); tag != "" {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil)) // no re-INVITE expected; accept
			return
		}
	}
	i, err := strconv.Atoi(strings.TrimPrefix(req.Recipient.User, mediaUser))
	if err != nil || i < 0 || i >= len(m.calls) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 404, "Not Found", nil))
		return
	}
	c := m.calls[i]
	s, err := m.ds.ReadInvite(req, tx)
	if err != nil {
		return
	}
	dst, err := mediaAddr(req.Body())
	if err != nil {
		m.setupErr.Store(err)
		_ = s.Respond(488, "Not Acceptable Here", nil)
		return
	}
	c.toPBX.dst = dst
	if err := s.RespondSDP(sdpFor(mediaTrunkIP, c.trunkRTP.LocalAddr().(*net.UDPAddr).Port)); err != nil {
		m.setupErr.Store(err)
		return
	}
	select {
	case <-c.answered:
	default:
		close(c.answered)
	}
	<-s.Context().Done()
}

// send ticks every 20 ms and sends one packet per direction of every call.
func (m *mediaSoak) send() {
	defer m.wg.Done()
	tick := time.NewTicker(rtpPeriod)
	defer tick.Stop()
	for seq := uint32(0); ; seq++ {
		for _, c := range m.calls {
			if !c.up {
				continue
			}
			for _, s := range []*stream{&c.toTrunk, &c.toPBX} {
				if _, err := s.conn.WriteToUDPAddrPort(s.packet(seq), s.dst); err == nil {
					s.sent.Add(1)
				}
			}
		}
		select {
		case <-m.stop:
			return
		case <-tick.C:
		}
	}
}

func (m *mediaSoak) receive(s *stream, conn *net.UDPConn) {
	defer m.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		s.got(buf[:n])
	}
}

// finish stops the senders, lets the last packets arrive, ends the calls
// with BYE and closes everything.
func (m *mediaSoak) finish() mediaResult {
	close(m.stop)
	time.Sleep(time.Second)
	for _, c := range m.calls {
		c.pbxRTP.SetReadDeadline(time.Now())
		c.trunkRTP.SetReadDeadline(time.Now())
	}
	m.wg.Wait()
	var r mediaResult
	r.calls = len(m.calls)
	for _, c := range m.calls {
		if !c.up {
			continue
		}
		r.up++
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := c.sess.Bye(ctx); err != nil {
			c.byeFailed = true
			r.byeFailed++
		}
		cancel()
		for d, s := range []*stream{&c.toTrunk, &c.toPBX} {
			sent := s.sent.Load()
			r.dir[d].sent += sent
			r.dir[d].received += s.received
			r.dir[d].dups += s.dups
			r.dir[d].reordered += s.reordered
			if s.received < sent {
				r.lossyCalls = append(r.lossyCalls, fmt.Sprintf("%d/%s lost %d of %d", c.n, dirNames[d], sent-s.received, sent))
			}
		}
	}
	for _, c := range m.calls {
		c.pbxRTP.Close()
		c.trunkRTP.Close()
	}
	if m.pbx != nil {
		m.pbx.Close()
		m.pbxConn.Close()
	}
	if m.trunk != nil {
		m.trunk.Close()
		m.trkCn.Close()
	}
	return r
}

var dirNames = [2]string{"pbx->trunk", "trunk->pbx"}

type dirCount struct{ sent, received, dups, reordered uint64 }

type mediaResult struct {
	calls, up, byeFailed int
	dir                  [2]dirCount
	lossyCalls           []string
}

func (r mediaResult) print() {
	var t dirCount
	for _, d := range r.dir {
		t.sent, t.received, t.dups, t.reordered = t.sent+d.sent, t.received+d.received, t.dups+d.dups, t.reordered+d.reordered
	}
	lost := int64(t.sent) - int64(t.received)
	pct := 0.0
	if t.sent > 0 {
		pct = 100 * float64(lost) / float64(t.sent)
	}
	fmt.Printf("SOAK media calls=%d sent=%d received=%d lost=%d loss_pct=%.4f established=%d duplicates=%d reordered=%d bye_failed=%d\n",
		r.calls, t.sent, t.received, lost, pct, r.up, t.dups, t.reordered, r.byeFailed)
	for i, d := range r.dir {
		fmt.Printf("SOAK media %s sent=%d received=%d lost=%d\n", dirNames[i], d.sent, d.received, int64(d.sent)-int64(d.received))
	}
	switch {
	case r.calls == 0:
	case r.up < r.calls:
		fmt.Printf("SOAK media VERDICT: only %d of %d media calls were set up\n", r.up, r.calls)
	case lost > 0:
		fmt.Printf("SOAK media VERDICT: media was lost: %d packets (%.4f%%) in %d streams: %s\n", lost, pct, len(r.lossyCalls), strings.Join(r.lossyCalls, ", "))
	default:
		fmt.Println("SOAK media VERDICT: no media lost")
	}
}
