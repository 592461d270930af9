package observe

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/store"
)

// benchCDR is a record as `palisade run` writes one for a call with media
// anchored (both legs, both media legs filled).
func benchCDR(i int, t0 time.Time) *CDR {
	ap := netip.MustParseAddrPort
	leg := func(iface, cid string) CallLeg {
		return CallLeg{Interface: iface, Transport: "udp", From: "sip:1001@10.0.0.10", To: "sip:4420@trunk.example.net",
			CallID: cid, Remote: ap("10.0.0.10:5060"), Peer: "pbx"}
	}
	m := MediaLeg{Local: ap("10.0.0.1:20000"), Remote: ap("10.0.0.10:4000"), Codec: "PCMU/8000", PacketsIn: 1500,
		PacketsOut: 1500, BytesIn: 258000, BytesOut: 258000, JitterMs: 0.4}
	start := t0.Add(time.Duration(i) * time.Millisecond)
	return &CDR{ID: fmt.Sprintf("c%08d-5f3a9b", i), Direction: DirOutbound, Start: start, Answer: start.Add(time.Second),
		End: start.Add(31 * time.Second), Duration: 30 * time.Second, A: leg("inside", fmt.Sprintf("%d-a@10.0.0.10", i)),
		B: leg("outside", fmt.Sprintf("%d-b@palisade", i)), Code: 200, EndedBy: EndedByCaller, Media: [2]MediaLeg{m, m}}
}

// BenchmarkCDRWriterBatch is the writer's cost per record in batches of
// cdrBatchMax, on a fresh data directory as `palisade setup` leaves it.
func BenchmarkCDRWriterBatch(b *testing.B) {
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r := NewRecorder(st, nil, nil)
	t0 := time.Now()
	batch := make([]*CDR, 0, cdrBatchMax)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch = append(batch, benchCDR(i, t0))
		if len(batch) == cdrBatchMax || i == b.N-1 {
			r.w.writeBatch(batch)
			batch = batch[:0]
		}
	}
}
