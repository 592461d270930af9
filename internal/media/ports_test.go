package media

import (
	"net"
	"net/netip"
	"testing"

	"github.com/palisade-sbc/palisade/internal/testkit"
)

// The allocator hands out pairs in range order, gives a released pair again
// only after every other free one, skips a pair another program holds, and
// keeps the ports of calls in progress across a range change.
func TestPortAllocatorOrder(t *testing.T) {
	addr := netip.MustParseAddr("127.0.0.1")
	base := freeEvenRange(t, addr, 8)
	p := newPortAllocator(base, base+7) // pairs base, base+2, base+4, base+6
	take := func() int {
		t.Helper()
		a, b, port, err := p.pair(addr)
		if err != nil {
			t.Fatalf("pair: %v", err)
		}
		a.close()
		b.close()
		return port
	}
	first, second := take(), take()
	if first != base || second != base+2 {
		t.Fatalf("first pairs %d, %d; want %d, %d", first, second, base, base+2)
	}
	p.release(first)
	if got := take(); got != base+4 {
		t.Fatalf("after a release got %d; want %d (the released pair goes to the back)", got, base+4)
	}
	// Another program holds base+6: it is skipped, the released pair comes next.
	hold, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(base+6))))
	if err != nil {
		t.Fatal(err)
	}
	if got := take(); got != base {
		t.Fatalf("got %d; want %d (base+6 is taken by another socket)", got, base)
	}
	if _, _, _, err := p.pair(addr); err != ErrNoPorts {
		t.Fatalf("with only a held pair left: %v, want ErrNoPorts", err)
	}
	hold.Close()
	if got := take(); got != base+6 {
		t.Fatalf("got %d; want the pair freed by the other program, %d", got, base+6)
	}
	if n := p.inUse(); n != 4 {
		t.Fatalf("%d pairs in use, want 4", n)
	}
	// A new range: pairs of calls in progress are not handed out twice.
	p.setRange(base+2, base+7)
	if _, _, _, err := p.pair(addr); err != ErrNoPorts {
		t.Fatalf("new range with every pair in use: %v, want ErrNoPorts", err)
	}
	p.release(base) // out of the new range: not handed out again
	p.release(base + 4)
	if got := take(); got != base+4 {
		t.Fatalf("got %d; want %d", got, base+4)
	}
	if _, _, _, err := p.pair(addr); err != ErrNoPorts {
		t.Fatalf("a pair outside the new range was handed out: %v", err)
	}
}

// A pair a restored call took (take) while it was free is not handed out
// to a new call, on another address either (a takeover of calls set up by
// two units refused a call whose port a new call had: the allocator gave
// the port out again on the other side's address). Released, it is free
// again.
func TestPortAllocatorSkipsRestored(t *testing.T) {
	in, out := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	base := freeEvenRange(t, in, 4)
	p := newPortAllocator(base, base+3) // pairs base, base+2
	a, b, err := p.take(in, base)
	if err != nil {
		t.Fatal(err)
	}
	a.close()
	b.close()
	c, d, port, err := p.pair(out)
	if err != nil {
		t.Fatal(err)
	}
	c.close()
	d.close()
	if port != base+2 {
		t.Fatalf("a new call got port %d; want %d (%d is the restored call's)", port, base+2, base)
	}
	if _, _, _, err := p.pair(out); err != ErrNoPorts {
		t.Fatalf("both pairs in use: %v, want ErrNoPorts", err)
	}
	p.release(base)
	c, d, port, err = p.pair(out)
	if err != nil || port != base {
		t.Fatalf("after the restored call ended: port %d, %v; want %d", port, err, base)
	}
	c.close()
	d.close()
	if n := p.inUse(); n != 2 {
		t.Fatalf("%d pairs in use, want 2", n)
	}
}

// freeEvenRange finds n free consecutive ports starting at an even one.
func freeEvenRange(t *testing.T, addr netip.Addr, n int) int {
	t.Helper()
	for range 50 {
		port := testkit.FreePort(t, "udp", addr.String())
		port -= port % 2
		ok := true
		for i := range n {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(port+i))))
			if err != nil {
				ok = false
				break
			}
			c.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no free port range")
	return 0
}
