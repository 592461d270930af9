package b2bua

import (
	"encoding/binary"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media"
)

var sdpConn = regexp.MustCompile(`c=IN IP4 ([0-9.]+)[\s\S]*m=audio ([0-9]+)`)

// TestBlindTransferMediaFlows: with the real media relay, RTP the
// transferee sends after the transfer arrives at the transfer target.
func TestBlindTransferMediaFlows(t *testing.T) {
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	eRTP, targetRTP := listen(), listen()
	ePort, targetPort := eRTP.LocalAddr().(*net.UDPAddr).Port, targetRTP.LocalAddr().(*net.UDPAddr).Port

	relay, mcfg := newTestRelay(t, true)

	pbx, itsp := newUDPPeers(t)
	acceptRefer(itsp)
	u := newTestUnitWith(t, pbx, itsp, Deps{Media: relay}, func(c *config.Config) {
		c.Routing.Refer.Always = true
		c.Media = mcfg
	})
	sess, srv := establish(t, u, pbx, itsp, viaInside(u))
	pbx.SetOnInvite(answerWith("127.0.0.1", targetPort))
	pbx.SetRespond(func(req *sip.Request) (int, []byte) {
		if req.Method == sip.INVITE {
			// the PBX plays the transferee (the first call) and the target
			if req.CallID().Value() == sess.InviteRequest.CallID().Value() {
				return 200, testSDP("127.0.0.1", ePort)
			}
			return 200, testSDP("127.0.0.1", targetPort)
		}
		return 200, nil
	})
	if res := refer(t, srv, srv.InviteRequest.Contact().Address, "<sip:200@"+u.outside().String()+">"); res.StatusCode != 202 {
		t.Fatalf("REFER answered %d", res.StatusCode)
	}
	if got := notifies(t, itsp, 2); got[1] != "SIP/2.0 200 OK" {
		t.Fatalf("NOTIFYs %q", got)
	}
	re := nextInvite(t, pbx, true)
	m := sdpConn.FindStringSubmatch(string(re.Body()))
	if m == nil {
		t.Fatalf("re-INVITE without media address: %q", re.Body())
	}
	if m[2] == strconv.Itoa(targetPort) {
		t.Fatal("the transferee was sent the target's own address: media not anchored")
	}
	relayAddr, _ := net.ResolveUDPAddr("udp", net.JoinHostPort(m[1], m[2]))
	pkt := make([]byte, 12+160)
	pkt[0], pkt[1] = 0x80, 0
	binary.BigEndian.PutUint32(pkt[8:], 0x5eed)
	for i := range 160 {
		pkt[12+i] = byte(i)
	}
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := targetRTP.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if n == len(pkt) {
				got <- append([]byte(nil), buf[:n]...)
				return
			}
		}
	}()
	var arrived []byte
	for seq := uint16(1); seq <= 300 && arrived == nil; seq++ {
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*160)
		if _, err := eRTP.WriteToUDP(pkt, relayAddr); err != nil {
			t.Fatal(err)
		}
		select {
		case arrived = <-got:
		case <-time.After(20 * time.Millisecond):
		}
	}
	if arrived == nil {
		t.Fatal("no RTP from the transferee reached the transfer target")
	}
	if string(arrived[12:]) != string(pkt[12:]) {
		t.Fatal("payload changed on the way")
	}
	if err := sess.Bye(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, u.Service)
}

var cryptoKey = regexp.MustCompile(`a=crypto:\d+ \S+ inline:([A-Za-z0-9+/=]+)`)

func srtpSDP(ip string, port int) []byte {
	return []byte("v=0\r\no=- 1 1 IN IP4 " + ip + "\r\ns=-\r\nc=IN IP4 " + ip + "\r\nt=0 0\r\nm=audio " + strconv.Itoa(port) +
		" RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n")
}

// TestTransferRenewsSRTPKeys: the SRTP transferee is re-INVITEd with a key
// of the new media session, not the one of the call before the transfer.
func TestTransferRenewsSRTPKeys(t *testing.T) {
	pbx, itsp, sess := srtpTransfer(t, func(req *sip.Request) (int, []byte) {
		if req.Method == sip.INVITE {
			return 200, srtpSDP("127.0.0.3", 5004)
		}
		return 200, nil
	}, nil)
	first := cryptoKey.FindStringSubmatch(string(sess.InviteResponse.Body()))
	if first == nil {
		t.Fatalf("no SRTP key in the answer to the trunk: %q", sess.InviteResponse.Body())
	}
	if got := notifies(t, pbx, 2); got[1] != "SIP/2.0 200 OK" {
		t.Fatalf("NOTIFYs %q", got)
	}
	re := nextInvite(t, itsp, true)
	second := cryptoKey.FindStringSubmatch(string(re.Body()))
	if second == nil || !strings.Contains(string(re.Body()), "RTP/SAVP") {
		t.Fatalf("re-INVITE to the SRTP transferee without a key: %q", re.Body())
	}
	if second[1] == first[1] {
		t.Fatal("the transfer kept the old SRTP key")
	}
}

// srtpTransfer is a call from the SRTP trunk (answering its re-INVITEs
// with respond) to the PBX with the real relay, which the PBX transfers to
// 201 on itself (REFER handled by the unit); it returns once the REFER is
// accepted.
func srtpTransfer(t *testing.T, respond func(*sip.Request) (int, []byte), mut func(*config.Config)) (pbx, itsp *peerUA, sess *sipgo.DialogClientSession) {
	t.Helper()
	relay, mcfg := newTestRelay(t, false)
	pbx = newPeerUA(t, "pbx", "127.0.0.1", "udp")
	itsp = newPeerUA(t, "trunk", "127.0.0.3", "udp")
	acceptRefer(pbx)
	itsp.SetRespond(respond)
	u := newTestUnitWith(t, pbx, itsp, Deps{Media: relay}, func(c *config.Config) {
		c.Routing.Refer.Always = true
		c.Media = mcfg // outside: SRTP required (default policy)
		c.DialPlan.Rules = []config.DialRule{{Name: "ext", Prefix: "2", Tail: "0-9", ForwardTo: []config.Forward{{Peer: "pbx"}}}}
		if mut != nil {
			mut(c)
		}
	})
	ctx := ctxT(t)
	out := u.outside()
	sess, err := itsp.DC.Invite(ctx, sip.Uri{Scheme: "sip", User: "100", Host: out.Addr().String(), Port: int(out.Port())},
		srtpSDP("127.0.0.3", 5002), sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = sess.Ack(ctx)
	srv := pbx.Session()
	pbx.Next(sip.INVITE)
	pbx.Next(sip.ACK)
	pbx.SetOnInvite(answerWith("127.0.0.1", 6600))
	if res := refer(t, srv, srv.InviteRequest.Contact().Address, "<sip:201@"+u.inside().String()+">"); res.StatusCode != 202 {
		t.Fatalf("REFER answered %d", res.StatusCode)
	}
	return pbx, itsp, sess
}

// newTestRelay is relayWith with plain RTP on both sides (plain) or the
// default policies (SRTP outside).
func newTestRelay(t *testing.T, plain bool) (*media.Relay, config.Media) {
	t.Helper()
	cfg, relay := relayWith(t, func(c *config.Config) {
		if plain {
			c.Media.Policies = nil
		}
	})
	return relay, cfg.Media
}
