package hep

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
)

// SubsystemName is the exporter's name in the unit.
const SubsystemName = "hep"

// Exporter is the HEP export of the running unit (a unit.Subsystem and an
// observe.Tracer). TraceSIP encodes the message once and offers it to every
// collector's bounded queue; it never waits for the network, so a collector
// that is down or slow costs dropped HEP packets, never a call.
type Exporter struct {
	log *slog.Logger
	cur atomic.Pointer[state]

	mu         sync.Mutex // serialises Apply and Close
	collectors map[collectorKey]*collector
}

// state is one applied configuration; never changed after the swap.
type state struct {
	nodeID     uint32
	nodeName   string
	authKey    string
	collectors []*collector
}

type collectorKey struct {
	transport, address string
	queue              int
}

// New returns an exporter that sends nothing until a configuration enables it.
func New(log *slog.Logger) *Exporter {
	if log == nil {
		log = slog.Default()
	}
	return &Exporter{log: log.With("subsystem", SubsystemName), collectors: map[collectorKey]*collector{}}
}

// Name implements unit.Subsystem.
func (e *Exporter) Name() string { return SubsystemName }

// Apply follows cfg.HEP. Collectors kept by the new configuration keep
// their queue and connection; removed ones are stopped.
func (e *Exporter) Apply(_ context.Context, cfg *config.Config) error {
	h := cfg.HEP
	e.mu.Lock()
	defer e.mu.Unlock()
	next := &state{nodeID: uint32(h.NodeID), nodeName: h.NodeName, authKey: h.Password}
	if next.nodeName == "" {
		next.nodeName = cfg.Unit.Name
	}
	keep := map[collectorKey]*collector{}
	if h.Enabled {
		for _, c := range h.Collectors {
			k := collectorKey{strings.ToLower(c.Transport), c.Address, h.QueueSize}
			col := e.collectors[k]
			if col == nil {
				col = startCollector(k, e.log)
			}
			keep[k] = col
			next.collectors = append(next.collectors, col)
		}
	}
	e.cur.Store(next)
	for k, col := range e.collectors {
		if keep[k] == nil {
			col.stop()
		}
	}
	e.collectors = keep
	return nil
}

// TraceSIP implements observe.Tracer.
func (e *Exporter) TraceSIP(m observe.SIPMessage) {
	st := e.cur.Load()
	if st == nil || len(st.collectors) == 0 {
		return
	}
	p := Packet{Src: m.Remote, Dst: m.Local, Proto: ProtoUDP, Time: m.Time, Type: TypeSIP,
		NodeID: st.nodeID, NodeName: st.nodeName, AuthKey: st.authKey, CorrelationID: m.CallID, Payload: m.Raw}
	if m.Dir == observe.Sent {
		p.Src, p.Dst = m.Local, m.Remote
	}
	if m.Transport != "udp" {
		p.Proto = ProtoTCP
	}
	// One encoding shared read-only by every collector.
	b, err := p.Append(make([]byte, 0, 128+len(m.Raw)+len(m.CallID)+len(st.nodeName)+len(st.authKey)))
	if err != nil {
		for _, c := range st.collectors {
			dropped.WithLabelValues(c.label, "too_large").Inc()
		}
		return
	}
	for _, c := range st.collectors {
		c.offer(b)
	}
}

// Drain implements unit.Subsystem; queued packets go out until Close.
func (e *Exporter) Drain(context.Context) error { return nil }

// Close stops every collector.
func (e *Exporter) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cur.Store(nil)
	for _, c := range e.collectors {
		c.stop()
	}
	e.collectors = map[collectorKey]*collector{}
	return nil
}
