package media

import (
	"net/netip"
	"sync"
)

// portAllocator hands out RTP/RTCP port pairs (even RTP port, RTCP the odd
// port above) from the configured range. It is only used at call setup and
// teardown, never on the packet path.
//
// Free pairs wait in a FIFO queue: a pair just released goes to the back,
// so it is not reused at once (late packets of the old call), and taking
// one is O(1). (A round-robin scan that skipped ports in use cost 3.5 % of a
// loaded unit's CPU once thousands of calls were up; bench/sip/RESULTS.md.)
type portAllocator struct {
	mu       sync.Mutex
	min, max int          // even first RTP port, last usable RTCP port
	free     []int        // free RTP ports of the range, oldest release first, from head
	head     int          // index of the queue's front in free
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
	if min == p.min && max == p.max {
		return
	}
	p.min, p.max = min, max
	p.free, p.head = p.free[:0], 0
	for port := min; port+1 <= max; port += 2 {
		if !p.used[port] {
			p.free = append(p.free, port)
		}
	}
}

func (p *portAllocator) inRange(port int) bool {
	return port >= p.min && port+1 <= p.max && (port-p.min)%2 == 0
}

func (p *portAllocator) push(port int) {
	if p.head > 1024 && p.head > len(p.free)/2 { // reclaim the popped front
		n := copy(p.free, p.free[p.head:])
		p.free, p.head = p.free[:n], 0
	}
	p.free = append(p.free, port)
}

// pair binds a free pair on addr, the one released longest ago first.
func (p *portAllocator) pair(addr netip.Addr) (rtp, rtcp udpSock, port int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for tries := len(p.free) - p.head; tries > 0; tries-- {
		port = p.free[p.head]
		p.head++
		if p.used[port] {
			// A restored call took it (take) while it waited here: it is
			// queued again when that call releases it. Binding it here
			// would succeed on another address, and two calls would share
			// the port's bookkeeping.
			continue
		}
		rtp, rtcp, err = openPair(addr, port)
		if err != nil {
			p.push(port) // taken by another program: try it again later
			continue
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
		if p.inRange(port) {
			p.push(port)
		}
	}
}

func (p *portAllocator) inUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}
