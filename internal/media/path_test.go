package media

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

// The relay must not allocate per packet. The whole round trip runs: the
// test's send, the relay's recvmmsg, SRTP decrypt/encrypt in place,
// sendmmsg, the test's receive; AllocsPerRun counts mallocs of every
// goroutine, the relay's readers included.
func TestPacketPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	for _, srtpSide := range []string{"decrypt", "encrypt"} {
		t.Run(srtpSide, func(t *testing.T) {
			r := newTestRelay(t, testConfig(t, 20))
			c := newTestCall(t, r)
			pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)
			exchange(t, pbx, ext, "warm up")

			from, to := pbx, ext.rtp // plain in, SRTP out: relay encrypts
			if srtpSide == "decrypt" {
				from, to = ext, pbx.rtp
			}
			// Prebuilt packets; the sender must not allocate either.
			pkts := make([][]byte, 0, 300)
			for range cap(pkts) {
				from.seq++
				p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: from.seq, SSRC: from.ssrc}, Payload: make([]byte, 160)}
				b, _ := p.Marshal()
				if from.tx != nil {
					b, _ = from.tx.EncryptRTP(nil, b, nil)
				}
				pkts = append(pkts, b)
			}
			buf := make([]byte, 2048)
			dst := from.remote
			to.SetReadDeadline(time.Now().Add(30 * time.Second))
			i := 0
			allocs := testing.AllocsPerRun(200, func() {
				if _, err := from.rtp.WriteToUDPAddrPort(pkts[i], dst); err != nil {
					t.Fatal(err)
				}
				i++
				if _, _, err := to.ReadFromUDPAddrPort(buf); err != nil {
					t.Fatal(err)
				}
			})
			if allocs > 0 {
				t.Fatalf("%.1f allocations per relayed packet, want 0", allocs)
			}
		})
	}
}

// BenchmarkSRTPTransform is the user-space share of relaying one G.711
// packet from an SRTP leg to another SRTP leg: decrypt and re-encrypt in
// place (RTP↔SRTP costs one of the two).
func BenchmarkSRTPTransform(b *testing.B) {
	in, _ := newCrypto(rand.Reader, 1, sdp.SuiteAES80)
	out, _ := newCrypto(rand.Reader, 1, sdp.SuiteAES80)
	sender, _ := newContext(in)
	rx, _ := newContext(in)
	tx, _ := newContext(out)
	pkts := make([][]byte, 1024)
	for i := range pkts {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: uint16(i), SSRC: 1}, Payload: make([]byte, 160)}
		raw, _ := p.Marshal()
		enc, _ := sender.EncryptRTP(nil, raw, nil)
		pkts[i] = enc
	}
	buf := make([]byte, bufSize)
	var hdr rtp.Header
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%len(pkts) == 0 && i > 0 {
			rx, _ = newContext(in) // the replay window would refuse a second round
			b.StopTimer()
			b.StartTimer()
		}
		n := copy(buf, pkts[i%len(pkts)])
		p, err := rx.DecryptRTP(buf[:n], buf[:n], &hdr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.EncryptRTP(p, p, &hdr); err != nil {
			b.Fatal(err)
		}
	}
}
