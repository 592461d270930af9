package cli

import (
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/observe/hep"
)

// hepReceiver collects the HEP packets a running unit sends to it.
type hepReceiver struct {
	addr string
	mu   sync.Mutex
	got  []hep.Packet
	bad  int
}

func startHEPReceiver(t *testing.T) *hepReceiver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	r := &hepReceiver{addr: pc.LocalAddr().String()}
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			p, _, err := hep.Decode(buf[:n])
			r.mu.Lock()
			if err != nil {
				r.bad++
			} else {
				r.got = append(r.got, p)
			}
			r.mu.Unlock()
		}
	}()
	return r
}

// checkCall waits until the receiver has as many packets correlated with
// the unit's call id as the trace has messages, then compares them: the
// same SIP texts, the node id configured.
func (r *hepReceiver) checkCall(t *testing.T, id string, nodeID uint32, msgs []observe.Message) {
	t.Helper()
	var got []string
	for i := 0; i < 600; i++ {
		got = nil
		r.mu.Lock()
		for _, p := range r.got {
			if p.CorrelationID == id && p.NodeID == nodeID {
				got = append(got, string(p.Payload))
			}
		}
		bad := r.bad
		r.mu.Unlock()
		if bad > 0 {
			t.Fatalf("%d HEP packets did not decode", bad)
		}
		if len(got) >= len(msgs) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var want []string
	for _, m := range msgs {
		want = append(want, m.Text)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("HEP packets of call %s: %d, trace: %d messages; texts differ", id, len(got), len(want))
	}
}
