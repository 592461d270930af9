package callmedia

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/store"
)

// fakeEngine's calls count what they are given, as a relay would.
type fakeEngine struct{ calls []*fakeCall }

type fakeCall struct {
	media.Call
	stats  media.CallStats
	closed bool
}

func (f *fakeEngine) NewCall(string, media.Leg, media.Leg) (media.Call, error) {
	pc, _ := media.Passthrough{}.NewCall("", media.Leg{}, media.Leg{})
	c := &fakeCall{Call: pc}
	f.calls = append(f.calls, c)
	return c, nil
}

func (c *fakeCall) Stats() media.CallStats {
	if c.closed {
		return media.CallStats{} // a closed call has forgotten its counters
	}
	return c.stats
}
func (c *fakeCall) Close() { c.closed = true }

func TestCountersReachStatusAndRecords(t *testing.T) {
	st := store.NewMemory()
	svc := observe.New(st, nil, nil)
	fe := &fakeEngine{}
	eng := Wrap(fe, svc)
	svc.Recorder.CallStarted(observe.CallStart{ID: "c1", Direction: observe.DirInbound})
	c, err := eng.NewCall("c1", media.Leg{}, media.Leg{})
	if err != nil {
		t.Fatal(err)
	}
	fe.calls[0].stats.Legs[0] = media.LegStats{Remote: netip.MustParseAddrPort("203.0.113.5:4000"), Codec: "PCMA", SRTP: true, PacketsIn: 50}
	fe.calls[0].stats.Legs[1] = media.LegStats{Codec: "PCMA", PacketsOut: 49, Lost: 1}

	src, _ := svc.Sources.Get(observe.StatusCalls)
	v, _ := src.Status(context.Background())
	if active := v.([]observe.CDR); len(active) != 1 || active[0].Media[0].PacketsIn != 50 || !active[0].Media[0].SRTP {
		t.Fatalf("status of calls %+v", active)
	}
	fe.calls[0].stats.Legs[0].PacketsIn = 80
	c.Close() // the last counters are taken before the media forgets them
	c.Close()
	svc.Recorder.CallEnded(observe.CallEnd{ID: "c1", Time: time.Now(), Code: 200, EndedBy: observe.EndedByCallee})
	svc.Close()
	cdrs, _, _ := observe.ListCDRs(context.Background(), st, time.Time{})
	if len(cdrs) != 1 || cdrs[0].Media[0].PacketsIn != 80 || cdrs[0].Media[1].Lost != 1 || cdrs[0].Media[0].Codec != "PCMA" {
		t.Fatalf("records %+v", cdrs)
	}
}

// The SIP layer anchors the media before it reports the call (and a call
// taken over from another unit is restored before it is reported): the
// status of calls shows the live counters all the same.
func TestCountersOfMediaAnchoredFirst(t *testing.T) {
	svc := observe.New(store.NewMemory(), nil, nil)
	defer svc.Close()
	fe := &fakeEngine{}
	c, err := Wrap(fe, svc).NewCall("c2", media.Leg{}, media.Leg{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	svc.Recorder.CallStarted(observe.CallStart{ID: "c2", Direction: observe.DirInbound})
	fe.calls[0].stats.Legs[0] = media.LegStats{Codec: "PCMU", PacketsIn: 7}
	src, _ := svc.Sources.Get(observe.StatusCalls)
	v, _ := src.Status(context.Background())
	if active := v.([]observe.CDR); len(active) != 1 || active[0].Media[0].PacketsIn != 7 {
		t.Fatalf("status of calls %+v", active)
	}
}
