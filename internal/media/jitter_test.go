package media

import (
	"math"
	"testing"
	"time"

	"github.com/pion/rtp"
	dto "github.com/prometheus/client_model/go"

	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

// refJitter is RFC 3550 §6.4.1 written out independently: arrivals in
// seconds, timestamps in clock units, result in ms.
func refJitter(arrivals []time.Time, ts []uint32, rate float64) float64 {
	j := 0.0
	for i := 1; i < len(ts); i++ {
		d := arrivals[i].Sub(arrivals[i-1]).Seconds()*rate - (float64(ts[i]) - float64(ts[i-1]))
		j += (math.Abs(d) - j) / 16
	}
	return j * 1000 / rate
}

// TestJitterEvenAndUneven sends G.711 RTP (20 ms of audio per packet) into
// a call, first evenly spaced, then (new SSRC, so the estimator starts
// again) in pairs 40 ms apart, and compares the relay's figure with the
// one computed here from the send times.
func TestJitterEvenAndUneven(t *testing.T) {
	r := newTestRelay(t, testConfig(t, 20))
	c := newTestCall(t, r)
	pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)

	run := func(ssrc uint32, gap func(i int) time.Duration) (want, got float64) {
		t.Helper()
		const n = 24
		var arr []time.Time
		var tss []uint32
		for i := range n {
			if i > 0 {
				time.Sleep(gap(i))
			}
			ts := uint32(1000 + i*160)
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: uint16(i), Timestamp: ts, SSRC: ssrc}, Payload: make([]byte, 160)}
			b, _ := p.Marshal()
			arr, tss = append(arr, time.Now()), append(tss, ts)
			if _, err := pbx.rtp.WriteToUDPAddrPort(b, pbx.remote); err != nil {
				t.Fatal(err)
			}
		}
		for range n { // all relayed: the relay has seen every packet
			ext.recvRTP()
		}
		return refJitter(arr, tss, 8000), c.Stats().Legs[SideA].JitterMs
	}

	even := func(int) time.Duration { return 20 * time.Millisecond }
	wantEven, gotEven := run(0x1111, even)
	uneven := func(i int) time.Duration { // pairs: 0 ms, then 40 ms
		if i%2 == 1 {
			return 0
		}
		return 40 * time.Millisecond
	}
	wantUneven, gotUneven := run(0x2222, uneven)
	t.Logf("even: relay %.3f ms, computed %.3f ms; uneven: relay %.3f ms, computed %.3f ms", gotEven, wantEven, gotUneven, wantUneven)

	// The relay stamps arrivals, the test stamps sends; loopback scheduling
	// separates the two by a little, hence the tolerance.
	near := func(got, want float64) bool {
		return math.Abs(got-want) <= math.Max(2, want/10)
	}
	if !near(gotEven, wantEven) || !near(gotUneven, wantUneven) {
		t.Fatalf("jitter: even relay %.3f computed %.3f; uneven relay %.3f computed %.3f (ms)", gotEven, wantEven, gotUneven, wantUneven)
	}
	// Pairs 40 ms apart deviate by 20 ms per packet: the estimate heads
	// there (about 15.5 ms after 24 packets); even spacing stays near zero.
	if gotUneven < 10 || gotUneven < 3*gotEven {
		t.Fatalf("uneven spacing gave %.3f ms, even %.3f ms: want clearly more", gotUneven, gotEven)
	}
	if b := c.Stats().Legs[SideB].JitterMs; b != 0 {
		t.Fatalf("leg B received no RTP but reports jitter %.3f ms", b)
	}

	before := histCount(t)
	c.Close()
	if after := histCount(t); after != before+1 {
		t.Fatalf("jitter histogram count %d -> %d, want one observation (leg A only)", before, after)
	}
}

func histCount(t *testing.T) uint64 {
	t.Helper()
	var m dto.Metric
	if err := jitterSeconds.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

func TestClockRate(t *testing.T) {
	for _, tc := range []struct {
		name, media string
		want        uint32
	}{
		{"static PCMU", "m=audio 4000 RTP/AVP 0 101\r\n", 8000},
		{"static G722 (8000 by RFC 3551)", "m=audio 4000 RTP/AVP 9\r\n", 8000},
		{"rtpmap opus", "m=audio 4000 RTP/AVP 111 0\r\na=rtpmap:111 opus/48000/2\r\n", 48000},
		{"rtpmap wideband", "m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 L16/16000\r\n", 16000},
		{"dynamic without rtpmap", "m=audio 4000 RTP/AVP 96\r\n", 8000},
		{"absurd rate", "m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 X/0\r\n", 8000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sdp.Parse([]byte("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" + tc.media))
			if err != nil {
				t.Fatal(err)
			}
			if got := clockRate(s.Media[0]); got != tc.want {
				t.Fatalf("clock rate %d, want %d", got, tc.want)
			}
		})
	}
}
