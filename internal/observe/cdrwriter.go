package observe

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/palisade-sbc/palisade/internal/store"
)

// Call records are written off the call path, in batches: the goroutine
// that ends a call only queues its record. One writer goroutine takes what
// is queued (up to cdrBatchMax) and writes it in one store transaction, so
// the store's commit (an fsync with SQLite's synchronous=FULL) is paid once
// per batch instead of once per call, and never by the SIP layer. The
// writer waits up to cdrLinger after the first record of a batch for more
// (a commit costs as much for one record as for hundreds: at 700 calls/s
// batches of one cost 20 % of the unit's CPU, bench/sip/RESULTS.md).
// Nothing is lost on SIGTERM: Close writes everything queued before it
// returns, and readers of records (the API, ListCalls) call Flush first.
const (
	cdrBatchMax = 512
	cdrQueueLen = 16384 // a full queue makes CallEnded wait: back-pressure, not loss
	cdrLinger   = 100 * time.Millisecond
)

type cdrWriter struct {
	r *Recorder

	mu      sync.Mutex
	cond    *sync.Cond
	q       chan *CDR
	closed  bool
	started bool
	queued  uint64 // records handed to the queue
	written uint64 // records the writer is done with (stored or reported failed)
	done    chan struct{}
	kick    chan struct{} // flush: write what is queued now, do not linger
}

func newCDRWriter(r *Recorder) *cdrWriter {
	w := &cdrWriter{r: r, q: make(chan *CDR, cdrQueueLen), done: make(chan struct{}), kick: make(chan struct{}, 1)}
	w.cond = sync.NewCond(&w.mu)
	return w
}

// add queues a record; after Close it writes the record itself.
func (w *cdrWriter) add(c *CDR) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.writeBatch([]*CDR{c})
		return
	}
	if !w.started {
		w.started = true
		go w.loop()
	}
	w.queued++
	w.mu.Unlock()
	w.q <- c // Close waits for the writer, which drains q: never a send on a closed channel (see Close)
}

func (w *cdrWriter) loop() {
	defer close(w.done)
	batch := make([]*CDR, 0, cdrBatchMax)
	linger := time.NewTimer(cdrLinger)
	for c := range w.q {
		batch = append(batch[:0], c)
		linger.Reset(cdrLinger)
	more:
		for len(batch) < cdrBatchMax {
			select {
			case c, ok := <-w.q:
				if !ok {
					break more
				}
				batch = append(batch, c)
			case <-w.kick:
				for len(batch) < cdrBatchMax && len(w.q) > 0 {
					batch = append(batch, <-w.q)
				}
				break more
			case <-linger.C:
				break more
			}
		}
		linger.Stop()
		w.writeBatch(batch)
		clear(batch)
		w.mu.Lock()
		w.written += uint64(len(batch))
		w.cond.Broadcast()
		w.mu.Unlock()
	}
}

// writeBatch stores the records in one transaction; if that fails, one by
// one, so that one bad record does not cost the others.
func (w *cdrWriter) writeBatch(batch []*CDR) {
	// No deadline: the SQLite driver starts a goroutine per statement to
	// watch a context that can end (a batch is hundreds of statements: 1 %
	// of a loaded unit's CPU, bench/sip/RESULTS.md run 9). Waits for the
	// database's lock are bounded by its busy_timeout instead.
	ctx := context.Background()
	kvs := make([]store.KV, 0, len(batch))
	cdrs := make([]*CDR, 0, len(batch))
	for _, c := range batch {
		b, err := json.Marshal(c)
		if err != nil {
			w.r.reportWrite(c, err)
			continue
		}
		kvs = append(kvs, store.KV{Key: CDRKey(c), Value: b})
		cdrs = append(cdrs, c)
	}
	err := w.r.st.Update(ctx, func(tx store.Tx) error {
		for _, kv := range kvs {
			if err := tx.Put(ctx, kv.Key, kv.Value); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		cdrWrites.WithLabelValues("ok").Add(float64(len(kvs)))
		for _, c := range cdrs {
			w.r.notify(c) // remote syslog and other sinks hear of stored records only
		}
		return
	}
	for i, kv := range kvs {
		w.r.reportWrite(cdrs[i], w.r.st.Put(ctx, kv.Key, kv.Value))
	}
}

// flush waits until every record queued before it is written.
func (w *cdrWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for target := w.queued; w.written < target; {
		select {
		case w.kick <- struct{}{}:
		default:
		}
		w.cond.Wait()
	}
}

// close writes what is queued and stops the writer; later records are
// written by their callers.
func (w *cdrWriter) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	started := w.started
	w.mu.Unlock()
	if !started {
		return
	}
	// Senders that got past the closed check are counted in queued; wait
	// for their records before closing the channel under them.
	w.flush()
	close(w.q)
	<-w.done
}
