package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

// Timeouts of a collector connection. A collector that takes longer is
// treated as down: its messages wait in the queue (and beyond it are
// dropped), never the caller.
const (
	dialTimeout  = 10 * time.Second
	writeTimeout = 10 * time.Second
	maxBackoff   = 30 * time.Second
)

const defaultQueue = 1000

type message struct {
	b    []byte
	kind string // msgIDLog or msgIDCDR
}

// destination sends to one collector from its own goroutine, fed by a
// bounded queue: enqueue never blocks.
type destination struct {
	cfg      config.SyslogDestination
	label    string // transport://address, the metrics label
	facility int
	minLevel slog.Level
	log      *slog.Logger

	tlsConf atomic.Pointer[tls.Config] // for tls; replaced on apply
	queue   chan message
	stop    chan struct{}
	done    chan struct{}
	closing sync.Once
	pending atomic.Int64 // queued and not yet finished (for Drain)
	up      atomic.Bool  // the last send succeeded
	conn    atomic.Pointer[conn]
}

func newDestination(cfg config.SyslogDestination, log *slog.Logger) *destination {
	size := cfg.QueueSize
	if size == 0 {
		size = defaultQueue
	}
	d := &destination{
		cfg:      cfg,
		label:    cfg.Transport + "://" + cfg.Address,
		facility: facilityCode(cfg.Facility),
		queue:    make(chan message, size),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	d.log = log.With("destination", d.label)
	if err := d.minLevel.UnmarshalText([]byte(cfg.LogLevel)); err != nil || cfg.LogLevel == "" {
		d.minLevel = slog.LevelInfo
	}
	collectorUp.WithLabelValues(d.label).Set(0)
	queueLength.WithLabelValues(d.label).Set(0)
	d.up.Store(true) // until a send fails: Drain waits for a new sender
	return d
}

func (d *destination) start() { go d.run() }

// enqueue hands a message over, or drops and counts it when the queue is full.
func (d *destination) enqueue(m message) {
	d.pending.Add(1)
	select {
	case d.queue <- m:
		queueLength.WithLabelValues(d.label).Set(float64(len(d.queue)))
	default:
		d.pending.Add(-1)
		droppedTotal.WithLabelValues(d.label, "queue_full").Inc()
	}
}

// close stops the sender; queued messages are dropped with it. A write
// stuck on a stalled collector ends with the connection.
func (d *destination) close() {
	d.closing.Do(func() {
		close(d.stop)
		if c := d.conn.Load(); c != nil {
			c.Close()
		}
	})
	<-d.done
	collectorUp.DeleteLabelValues(d.label)
	queueLength.DeleteLabelValues(d.label)
}

// drain waits until the queue is sent or ctx ends. A collector that is
// down is not waited for: it would hold up the unit's shutdown for the
// whole drain time.
func (d *destination) drain(ctx context.Context) error {
	for d.pending.Load() > 0 {
		if !d.up.Load() {
			return fmt.Errorf("syslog %s: collector down, %d messages not sent", d.label, d.pending.Load())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("syslog %s: %d messages not sent: %w", d.label, d.pending.Load(), ctx.Err())
		case <-d.done:
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// conn is a collector connection; dead turns true when the collector
// closes it (a reader goroutine watches, collectors send nothing).
type conn struct {
	net.Conn
	dead atomic.Bool
}

func (d *destination) run() {
	defer close(d.done)
	var c *conn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	// use makes nc the connection close() can interrupt.
	use := func(nc *conn) {
		c = nc
		d.conn.Store(nc)
		select {
		case <-d.stop: // close() may have looked before the store
			nc.Close()
		default:
		}
	}
	backoff := time.Second
	up := true // log the first failure
	setUp := func(ok bool, err error) {
		d.up.Store(ok)
		if ok {
			collectorUp.WithLabelValues(d.label).Set(1)
		} else {
			collectorUp.WithLabelValues(d.label).Set(0)
		}
		if ok != up {
			up = ok
			if ok {
				d.log.Info("syslog collector reachable again")
			} else {
				// Once per outage: this record itself goes to the queue.
				d.log.Warn("syslog collector unreachable; messages are queued, then dropped and counted", "err", err)
			}
		}
	}
	for {
		var m message
		select {
		case <-d.stop:
			return
		case m = <-d.queue:
		}
		queueLength.WithLabelValues(d.label).Set(float64(len(d.queue)))
		if c != nil && c.dead.Load() {
			c.Close()
			c = nil
		}
		if c == nil {
			nc, err := d.dial()
			if err != nil {
				droppedTotal.WithLabelValues(d.label, "unreachable").Inc()
				d.pending.Add(-1)
				setUp(false, err)
				select {
				case <-d.stop:
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, maxBackoff)
				continue
			}
			use(nc)
			backoff = time.Second
		}
		if err := d.write(c, m.b); err != nil {
			droppedTotal.WithLabelValues(d.label, "send_error").Inc()
			setUp(false, err)
			if d.cfg.Transport != "udp" {
				c.Close()
				c = nil
			}
		} else {
			sentTotal.WithLabelValues(d.label, m.kind).Inc()
			setUp(true, nil)
		}
		d.pending.Add(-1)
	}
}

func (d *destination) dial() (*conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	go func() {
		select {
		case <-d.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var nc net.Conn
	var err error
	switch d.cfg.Transport {
	case "udp":
		nc, err = (&net.Dialer{}).DialContext(ctx, "udp", d.cfg.Address)
	case "tcp":
		nc, err = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext(ctx, "tcp", d.cfg.Address)
	case "tls":
		conf := d.tlsConf.Load()
		if conf == nil {
			return nil, errors.New("no TLS configuration")
		}
		nc, err = (&tls.Dialer{NetDialer: &net.Dialer{KeepAlive: 30 * time.Second}, Config: conf}).DialContext(ctx, "tcp", d.cfg.Address)
	default:
		err = fmt.Errorf("transport %q", d.cfg.Transport)
	}
	if err != nil {
		return nil, err
	}
	c := &conn{Conn: nc}
	if d.cfg.Transport != "udp" {
		go func() {
			_, _ = io.Copy(io.Discard, nc)
			c.dead.Store(true)
		}()
	}
	return c, nil
}

// write frames msg for the transport: a datagram for UDP (RFC 5426, cut
// at maxUDP), octet counting for TCP and TLS (RFC 6587 §3.4.1, RFC 5425
// §4.3: "LEN SP MSG").
func (d *destination) write(c *conn, msg []byte) error {
	if err := c.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	if d.cfg.Transport == "udp" {
		if len(msg) > maxUDP {
			msg = msg[:maxUDP]
		}
		_, err := c.Write(msg)
		return err
	}
	frame := make([]byte, 0, len(msg)+8)
	frame = strconv.AppendInt(frame, int64(len(msg)), 10)
	frame = append(frame, ' ')
	frame = append(frame, msg...)
	_, err := c.Write(frame)
	return err
}
