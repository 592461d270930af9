package b2bua

import (
	"net/netip"
	goruntime "runtime"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/sip/transport"
)

// A transfer replaces a leg (dialog and endpoint) and the media under the call lock
// while the relay keeps reading them; run with -race (the race detector
// failed this before the reads took the lock).
func TestLegSwapWhileRelaying(t *testing.T) {
	mkEp := func(name, addr string) *endpoint {
		e := &endpoint{name: name}
		e.info.Store(&ifaceInfo{addr: netip.MustParseAddr(addr), Local: transport.Local{Host: addr, Ports: map[string]int{"udp": 5060}}})
		return e
	}
	e1, e2 := mkEp("inside", "127.0.0.1"), mkEp("outside", "127.0.0.2")
	mkLeg := func(host string) Leg {
		return Leg{Transport: "udp", CallID: "x", LocalTag: "l", RemoteTag: "r",
			RemoteTarget: sip.Uri{Scheme: "sip", Host: host, Port: 5060}, Flow: host + ":5060"}
	}
	mc, _ := media.Passthrough{}.NewCall("", media.Leg{}, media.Leg{})
	c := &call{rt: &runtime{maxForwards: 70}, media: mc}
	c.setLeg(media.SideA, &leg{Leg: mkLeg("127.0.0.5"), ep: e1})
	c.setLeg(media.SideB, &leg{Leg: mkLeg("127.0.0.6"), ep: e1})
	const n = 300
	done := make(chan struct{})
	go func() { // what transfer.swap does
		defer close(done)
		for i := range n {
			mc2, _ := media.Passthrough{}.NewCall("", media.Leg{}, media.Leg{})
			c.mu.Lock()
			c.setLeg(media.SideB, &leg{Leg: mkLeg("127.0.0.7"), ep: [2]*endpoint{e1, e2}[i%2]})
			c.media = mc2
			c.mu.Unlock()
			goruntime.Gosched()
		}
	}()
	for range n {
		l := c.legAt(media.SideB)
		if tg := l.target(); !tg.Addr.IsValid() {
			t.Fatalf("no target: %+v", tg)
		}
		if r, _ := l.inDialog(sip.BYE, 1); r.Via() == nil {
			t.Fatal("no Via")
		}
		if c.mediaOf() == nil || l.endpoint() == nil || l.dialog().RemoteTag != "r" {
			t.Fatal("accessor returned nothing")
		}
		goruntime.Gosched()
	}
	<-done
}
