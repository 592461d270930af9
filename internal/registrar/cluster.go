package registrar

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/palisade-sbc/palisade/internal/store"
)

// nonceKeyKey holds the digest nonce secret the units of a cluster share,
// so that a challenge from one unit may be answered through another.
const nonceKeyKey = "cluster/digest-nonce-key"

// SetCluster makes the registrar the one of unit name in a cluster: its
// bindings record the unit, the bindings of every unit are followed
// through the store, and the nonce secret is shared. Call it before the
// first Apply.
func (r *Registrar) SetCluster(unit string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unit = unit
}

// joinCluster (first Apply, r.mu held) takes the shared nonce secret and
// starts following the bindings; it watches before the bindings are
// loaded, so that nothing written in between is missed.
func (r *Registrar) joinCluster(ctx context.Context) error {
	key, err := store.SharedSecret(ctx, r.st, nonceKeyKey)
	if err != nil {
		return fmt.Errorf("registrar: shared nonce secret: %w", err)
	}
	r.auth.SetKey([32]byte(key))
	r.flowKey.Store(&key)
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ch, err := r.st.Watch(wctx, keyPrefix)
	if err != nil {
		cancel()
		return fmt.Errorf("registrar: following the cluster's bindings: %w", err)
	}
	r.stopWatch, r.watchDone = cancel, make(chan struct{})
	go r.follow(wctx, ch, r.watchDone)
	return nil
}

// follow applies the bindings other units (and this one) wrote.
func (r *Registrar) follow(ctx context.Context, ch <-chan store.Event, done chan struct{}) {
	defer close(done)
	for ev := range ch {
		r.mu.Lock()
		aor := strings.TrimPrefix(ev.Key, keyPrefix)
		switch ev.Type {
		case store.EventPut:
			var bs []Binding
			if err := json.Unmarshal(ev.Value, &bs); err != nil {
				r.limited.Warn("follow", "ignoring unreadable bindings from the cluster", "key", ev.Key, "err", err)
				break
			}
			if bs = live(bs, r.now()); len(bs) > 0 {
				r.bindings[aor] = bs
			} else {
				delete(r.bindings, aor)
			}
		case store.EventDelete:
			delete(r.bindings, aor)
		case store.EventReset:
			r.bindings = make(map[string][]Binding)
			if err := r.load(ctx); err != nil {
				r.limited.Warn("follow", "re-reading the cluster's bindings failed", "err", err)
			}
		}
		bindingsGauge.Set(float64(r.countLocked()))
		r.mu.Unlock()
	}
}
