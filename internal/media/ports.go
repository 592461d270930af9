package media

import (
	"net/netip"
	"sync"
)

// portAllocator hands out RTP/RTCP port pairs (even RTP port, RTCP the odd
// port above) from the configured range. It is only used at call setup and
// teardown, never on the packet path.
type portAllocator struct {
	mu       sync.Mutex
	min, max int // even first RTP port, last usable RTCP port
	next     int
	used     map[int]bool // RTP ports in use (any range a call was set up with)
}

func newPortAllocator(min, max int) *portAllocator {
	p := &portAllocator{used: map[int]bool{}}
	p.setRange(min, max)
	return p
}

// setRange changes the range for new calls; ports of calls in progress stay theirs.
func (p *portAllocator) setRange(min, max int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if min%2 != 0 {
		min++
	}
	p.min, p.max = min, max
	if p.next < min || p.next+1 > max {
		p.next = min
	}
}

// pair binds a free pair on addr. Pairs are handed out round robin so that a
// port just released is not reused at once (late packets of the old call).
func (p *portAllocator) pair(addr netip.Addr) (rtp, rtcp udpSock, port int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.max < p.min+1 {
		return rtp, rtcp, 0, ErrNoPorts
	}
	n := (p.max-p.min+1)/2 + 1
	for range n {
		port = p.next
		p.next += 2
		if p.next+1 > p.max {
			p.next = p.min
		}
		if port+1 > p.max || p.used[port] {
			continue
		}
		rtp, rtcp, err = openPair(addr, port)
		if err != nil {
			continue // taken by another program: try the next pair
		}
		p.used[port] = true
		portsInUse.Add(2)
		return rtp, rtcp, port, nil
	}
	portExhausted.Inc()
	return rtp, rtcp, 0, ErrNoPorts
}

func (p *portAllocator) release(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used[port] {
		delete(p.used, port)
		portsInUse.Add(-2)
	}
}

func (p *portAllocator) inUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}
