package media

import (
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
