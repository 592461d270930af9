package hep

import (
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	sent = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "hep", Name: "packets_sent_total",
		Help: "HEP packets written to a collector, by collector (transport:address).",
	}, []string{"collector"})
	dropped = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "hep", Name: "packets_dropped_total",
		Help: "HEP packets not sent, by collector and reason (queue_full, collector_down, write_error, too_large).",
	}, []string{"collector", "reason"})
	collectorUp = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "hep", Name: "collector_up",
		Help: "1 while the last write to a collector succeeded (TCP: connected), else 0.",
	}, []string{"collector"})
)

// Timing of a collector's connection. A TCP collector that refuses or
// times out is retried after a pause that doubles up to maxRetry; packets
// arriving meanwhile are dropped (collector_down).
const (
	dialTimeout  = 5 * time.Second
	writeTimeout = 5 * time.Second
	firstRetry   = time.Second
	maxRetry     = 30 * time.Second
)

// collector sends the packets offered to it, in order, from its own
// goroutine.
type collector struct {
	key     collectorKey
	label   string
	log     *observe.LimitedLogger
	queue   chan []byte
	quit    chan struct{}
	done    chan struct{}
	stopped sync.Once

	connMu    sync.Mutex // guards conn's changes; stop closes it to end a stuck write
	conn      net.Conn
	retryAt   time.Time
	retryWait time.Duration
}

func startCollector(k collectorKey, log *slog.Logger) *collector {
	c := &collector{key: k, label: k.transport + ":" + k.address, queue: make(chan []byte, k.queue),
		quit: make(chan struct{}), done: make(chan struct{})}
	c.log = observe.NewLimitedLogger(log.With("collector", c.label), time.Minute, 5)
	collectorUp.WithLabelValues(c.label).Set(0)
	go c.run()
	return c
}

// offer queues b without waiting; a full queue drops it.
func (c *collector) offer(b []byte) {
	select {
	case c.queue <- b:
	default:
		dropped.WithLabelValues(c.label, "queue_full").Inc()
		c.log.Warn("queue_full", "HEP collector is slower than the traffic; packets dropped")
	}
}

func (c *collector) stop() {
	c.stopped.Do(func() {
		close(c.quit)
		c.connMu.Lock()
		if c.conn != nil {
			c.conn.Close() // a write to a collector that does not read ends now
		}
		c.connMu.Unlock()
		<-c.done
		collectorUp.DeleteLabelValues(c.label)
	})
}

func (c *collector) run() {
	defer close(c.done)
	defer c.setConn(nil)
	for {
		select {
		case <-c.quit:
			return
		case b := <-c.queue:
			c.send(b)
		}
	}
}

func (c *collector) send(b []byte) {
	if c.conn == nil && !c.connect() {
		dropped.WithLabelValues(c.label, "collector_down").Inc()
		return
	}
	conn := c.conn // only this goroutine changes it
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := conn.Write(b); err != nil {
		dropped.WithLabelValues(c.label, "write_error").Inc()
		collectorUp.WithLabelValues(c.label).Set(0)
		c.log.Warn("write", "sending to the HEP collector failed", "err", err)
		if c.key.transport == "tcp" {
			// A stream may have been cut mid-packet: start a new one.
			c.setConn(nil)
			c.backOff()
		}
		return
	}
	sent.WithLabelValues(c.label).Inc()
	collectorUp.WithLabelValues(c.label).Set(1)
}

// connect dials the collector unless a retry pause is running.
func (c *collector) connect() bool {
	if time.Now().Before(c.retryAt) {
		return false
	}
	conn, err := net.DialTimeout(c.key.transport, c.key.address, dialTimeout)
	if err != nil {
		collectorUp.WithLabelValues(c.label).Set(0)
		c.log.Warn("dial", "HEP collector unreachable; packets are dropped until it answers", "err", err)
		c.backOff()
		return false
	}
	c.setConn(conn)
	c.retryWait = 0
	return true
}

// setConn replaces the connection, closing the old one.
func (c *collector) setConn(conn net.Conn) {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.conn != nil {
		c.conn.Close()
	}
	c.conn = conn
}

func (c *collector) backOff() {
	c.retryWait = min(max(2*c.retryWait, firstRetry), maxRetry)
	c.retryAt = time.Now().Add(c.retryWait)
}
