package takeover

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// RecordPrefix is the store key prefix of the call records
// (ha/calls/<call id>, under the cluster's namespace).
const RecordPrefix = "ha/calls/"

// RecordTTL is the time to live of a record: a record nobody deletes (its
// call ended while no unit carried it) goes after this. The keeper writes
// a live call's record again every RecordTTL/2.
const RecordTTL = 24 * time.Hour

// Writer is what the keeper needs of the cluster's store (store.Etcd).
type Writer interface {
	PutTTL(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Delete(ctx context.Context, key string) error
}

// Keeper writes the records of confirmed calls (b2bua.Keeper): off the
// call path, one goroutine, the changes of a call before its write made
// into one write. It writes only while the unit owns the floating addresses.
type Keeper struct {
	st     Writer
	log    *slog.Logger
	active atomic.Bool

	mu       sync.Mutex
	pending  map[string]func() ([]byte, error) // nil: delete
	live     map[string]func() ([]byte, error) // written, for the refresh
	released map[string]bool
	wake     chan struct{}
}

// NewKeeper returns a keeper writing to st; Run does the writing.
func NewKeeper(st Writer, log *slog.Logger) *Keeper {
	return &Keeper{st: st, log: log, pending: map[string]func() ([]byte, error){},
		live: map[string]func() ([]byte, error){}, released: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// SetActive turns the writing on or off (on while this unit owns the
// floating addresses); deletes of records written before go on.
func (k *Keeper) SetActive(on bool) { k.active.Store(on) }

// Changed implements b2bua.Keeper.
func (k *Keeper) Changed(id string, rec func() ([]byte, error)) {
	if !k.active.Load() {
		return
	}
	k.mu.Lock()
	if op, ok := k.pending[id]; ok && op == nil || k.released[id] {
		k.mu.Unlock()
		return // the call ended: its delete stays
	}
	k.pending[id] = rec
	k.live[id] = rec
	k.mu.Unlock()
	k.poke()
}

// Touch writes the record of a kept call again (its media's SRTP counters
// moved: media.WithCounterHook). It returns at once.
func (k *Keeper) Touch(id string) {
	k.mu.Lock()
	rec, ok := k.live[id]
	if _, queued := k.pending[id]; ok && !queued {
		k.pending[id] = rec
	}
	k.mu.Unlock()
	if ok {
		k.poke()
	}
}

// Ended implements b2bua.Keeper.
func (k *Keeper) Ended(id string) {
	k.mu.Lock()
	_, written := k.live[id]
	_, queued := k.pending[id]
	delete(k.live, id)
	if k.released[id] {
		delete(k.released, id)
		delete(k.pending, id)
		k.mu.Unlock()
		return
	}
	if !written && !queued {
		k.mu.Unlock()
		return // never kept (early, or no floating address)
	}
	k.pending[id] = nil
	k.mu.Unlock()
	k.poke()
}

// Release implements b2bua.Keeper: the call is carried on elsewhere.
func (k *Keeper) Release(id string) {
	k.mu.Lock()
	k.released[id] = true
	delete(k.pending, id)
	delete(k.live, id)
	k.mu.Unlock()
}

func (k *Keeper) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// Run writes until ctx ends.
func (k *Keeper) Run(ctx context.Context) {
	refresh := time.NewTicker(RecordTTL / 2)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.wake:
		case <-refresh.C:
			k.queueAll()
		}
		k.flush(ctx)
	}
}

// flush writes what is pending; a failed write is tried again on the next
// wake-up (a later change of the call replaces it).
func (k *Keeper) flush(ctx context.Context) {
	k.mu.Lock()
	batch := k.pending
	k.pending = map[string]func() ([]byte, error){}
	k.mu.Unlock()
	failed := false
	for id, rec := range batch {
		key := RecordPrefix + id
		if rec == nil {
			if err := k.st.Delete(ctx, key); err != nil {
				k.retry(id, nil, err)
				failed = true
				continue
			}
			recordWrites.WithLabelValues("delete").Inc()
			continue
		}
		b, err := rec()
		if err != nil { // the call ended meanwhile, mostly
			k.log.Debug("ha: call record not made", "call_id", id, "err", err)
			continue
		}
		if err := k.st.PutTTL(ctx, key, b, RecordTTL); err != nil {
			k.retry(id, rec, err)
			failed = true
			continue
		}
		recordWrites.WithLabelValues("put").Inc()
		recordBytes.Add(float64(len(b)))
	}
	if failed && ctx.Err() == nil {
		time.AfterFunc(500*time.Millisecond, k.poke)
	}
}

// rewriteAll writes the record of every kept call now (a planned move:
// the next owner must find the media counters as of the release).
func (k *Keeper) rewriteAll(ctx context.Context) {
	k.queueAll()
	k.flush(ctx)
}

// queueAll queues a write of every kept call.
func (k *Keeper) queueAll() {
	k.mu.Lock()
	for id, rec := range k.live {
		if _, ok := k.pending[id]; !ok {
			k.pending[id] = rec
		}
	}
	k.mu.Unlock()
}

// retry queues a failed write again unless something newer replaced it.
func (k *Keeper) retry(id string, rec func() ([]byte, error), err error) {
	recordErrors.Inc()
	k.log.Warn("ha: call record not written; trying again", "call_id", id, "err", err)
	k.mu.Lock()
	if _, newer := k.pending[id]; !newer && !k.released[id] {
		k.pending[id] = rec
	}
	k.mu.Unlock()
}
