package store

import (
	"context"
	"strings"
	"sync"
)

// hub delivers the changes of one in-process store (SQLite, Memory) to its
// watchers. Every watcher has its own unbounded queue, so that a slow
// watcher never blocks a writer and never loses an event.
type hub struct {
	mu       sync.Mutex
	watchers map[*watcher]struct{}
}

type watcher struct {
	prefix string
	mu     sync.Mutex
	queue  []Event
	wake   chan struct{} // capacity 1: "the queue has grown"
}

// watch registers a watcher for prefix until ctx ends.
func (h *hub) watch(ctx context.Context, prefix string) <-chan Event {
	w := &watcher{prefix: prefix, wake: make(chan struct{}, 1)}
	h.mu.Lock()
	if h.watchers == nil {
		h.watchers = map[*watcher]struct{}{}
	}
	h.watchers[w] = struct{}{}
	h.mu.Unlock()
	out := make(chan Event)
	go func() {
		defer close(out)
		defer func() {
			h.mu.Lock()
			delete(h.watchers, w)
			h.mu.Unlock()
		}()
		for {
			w.mu.Lock()
			q := w.queue
			w.queue = nil
			w.mu.Unlock()
			for _, e := range q {
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-w.wake:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// notify hands committed changes, in commit order, to every interested
// watcher. Callers hold their store's write lock, so that events of
// different writes are not interleaved.
func (h *hub) notify(evs ...Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		var mine []Event
		for _, e := range evs {
			if strings.HasPrefix(e.Key, w.prefix) {
				e.Value = clone(e.Value)
				mine = append(mine, e)
			}
		}
		if len(mine) == 0 {
			continue
		}
		w.mu.Lock()
		w.queue = append(w.queue, mine...)
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// wants reports whether a watcher would be told of a change of key now.
func (h *hub) wants(key string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		if strings.HasPrefix(key, w.prefix) {
			return true
		}
	}
	return false
}

func clone(b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	return out
}
