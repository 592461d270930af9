package takeover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/ha/vip"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
	"github.com/palisade-sbc/palisade/internal/store"
)

// fakeStore lists records from memory (or fails, as an unreachable etcd).
type fakeStore struct {
	memWriter
	list    []store.KV
	listErr error
}

func (f *fakeStore) List(context.Context, string) ([]store.KV, error) { return f.list, f.listErr }
func (f *fakeStore) Client() *clientv3.Client                         { return nil }
func (f *fakeStore) Namespace() string                                { return "test/" }

// fakeSIP records what the takeover asks of the B2BUA.
type fakeSIP struct {
	mu      sync.Mutex
	held    [][]string
	adopted []string
	calls   int
	// reconnected gets the ids of each Reconnect.
	reconnected chan []string
	// net, when set, is asked at each adoption how many announcements
	// were made by then (announced).
	net       *fakeNet
	announced []int
	// adopting is Adopting's state; refusing what it was at each adoption.
	adopting bool
	refusing []bool
}

func (f *fakeSIP) Adopting(on bool) {
	f.mu.Lock()
	f.adopting = on
	f.mu.Unlock()
}

func (f *fakeSIP) Reconnect(_ context.Context, ids []string) []b2bua.Reconnection {
	if f.reconnected != nil {
		f.reconnected <- ids
	}
	return []b2bua.Reconnection{{Transport: "tls", Legs: len(ids)}}
}

func (f *fakeSIP) Hold(_ context.Context, ifaces []string) error {
	f.mu.Lock()
	f.held = append(f.held, ifaces)
	f.mu.Unlock()
	return nil
}

func (f *fakeSIP) Abandon([]string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.calls
	f.calls = 0
	return n
}

func (f *fakeSIP) Adopt(rec []byte) (string, error) {
	if string(rec) == "own" {
		return "", fmt.Errorf("call own: %w", b2bua.ErrCarried)
	}
	if !strings.Contains(string(rec), "good") {
		return "", errors.New("call record refused: corrupt")
	}
	f.mu.Lock()
	f.adopted = append(f.adopted, string(rec))
	f.calls++
	if f.net != nil {
		f.announced = append(f.announced, f.net.announcements())
	}
	f.refusing = append(f.refusing, f.adopting)
	f.mu.Unlock()
	return string(rec), nil
}

func (f *fakeSIP) Drain(context.Context) error { return nil }
func (f *fakeSIP) Resume()                     {}

func (f *fakeSIP) Rehome(rec []byte) (string, error) { return f.Adopt(rec) }

func (f *fakeSIP) CallCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

// fakeNet keeps the addresses on an imaginary link and counts the
// announcements.
type fakeNet struct {
	mu        sync.Mutex
	on        map[string]bool
	adds      int
	announced int
}

func (n *fakeNet) Add(a vip.Address, _ time.Duration) error {
	n.mu.Lock()
	n.on[a.Prefix.String()] = true
	n.adds++
	n.mu.Unlock()
	return nil
}

func (n *fakeNet) Remove(a vip.Address) error {
	n.mu.Lock()
	delete(n.on, a.Prefix.String())
	n.mu.Unlock()
	return nil
}

func (n *fakeNet) Announce(vip.Address) error {
	n.mu.Lock()
	n.announced++
	n.mu.Unlock()
	return nil
}

func (n *fakeNet) announcements() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.announced
}

// The group of floating addresses: ready reads the records (and fails
// while they cannot be read); the first Add puts every address up, opens
// the listeners and adopts the good records, removing the bad ones; a
// renewal adopts nothing again; Remove takes the addresses down, forgets
// the calls and closes the listeners. The addresses are announced before
// the first call is adopted (its media comes back at once); new calls are
// refused while the calls are adopted, and only then.
func TestGroupTakesOverAndGivesUp(t *testing.T) {
	st := &fakeStore{memWriter: memWriter{kv: map[string]string{}}}
	net := &fakeNet{on: map[string]bool{}}
	sip := &fakeSIP{net: net, reconnected: make(chan []string, 1)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tk := New(Deps{Store: st, Unit: "b", SIP: sip, Keeper: NewKeeper(st, log), Net: net, Log: log})
	cfg := config.Default()
	cfg.HA.Floating = []config.Floating{{Interface: "inside", Link: "eth0", PrefixLength: 24}, {Interface: "outside", Link: "eth1"}}
	g, err := tk.newGroup(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tk.group = g // what Apply does, without the election
	ctx := context.Background()
	st.listErr = errors.New("etcd unreachable")
	if err := g.ready(ctx); err == nil {
		t.Fatal("ready although the records cannot be read")
	}
	st.listErr = nil
	st.list = []store.KV{{Key: RecordPrefix + "c1", Value: []byte("good-1")}, {Key: RecordPrefix + "c2", Value: []byte("bad")},
		{Key: RecordPrefix + "c3", Value: []byte("good-3")}, {Key: RecordPrefix + "c4", Value: []byte("own")}}
	if err := g.ready(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Add(g.addrs[0], time.Second); err != nil {
		t.Fatal(err)
	}
	if err := g.Add(g.addrs[0], time.Second); err != nil { // a renewal
		t.Fatal(err)
	}
	// The connections of the adopted calls are opened again.
	select {
	case ids := <-sip.reconnected:
		if !slices.Equal(ids, []string{"good-1", "good-3"}) {
			t.Fatalf("reconnected calls %v", ids)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the connections of the adopted calls were not opened again")
	}
	for deadline := time.Now().Add(10 * time.Second); tk.Status().Reconnects != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("status %+v: no reconnection counted", tk.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s := tk.Status()
	switch {
	case !net.on["127.0.0.1/24"] || !net.on["127.0.0.2/32"]:
		t.Fatalf("addresses up: %v", net.on)
	case !slices.Equal(sip.adopted, []string{"good-1", "good-3"}):
		t.Fatalf("adopted %v", sip.adopted)
	case sip.announced[0] != 2:
		t.Fatalf("%d of the 2 addresses announced when the first call was adopted", sip.announced[0])
	case !slices.Equal(sip.refusing, []bool{true, true}) || sip.adopting:
		t.Fatalf("new calls refused during the adoptions: %v, after: %v", sip.refusing, sip.adopting)
	case !slices.Equal(st.take(), []string{"delete " + RecordPrefix + "c2"}):
		t.Fatal("the refused record was not removed")
	case len(sip.held) != 1 || sip.held[0] != nil:
		t.Fatalf("listeners: %v", sip.held)
	case s == nil || !s.Owner || s.Takeovers != 1 || s.CallsAdopted != 2 || s.CallsRefused != 1:
		t.Fatalf("status %+v", s)
	case !tk.d.Keeper.active.Load():
		t.Fatal("the owner's keeper does not write")
	}
	if err := g.Remove(g.addrs[0]); err != nil {
		t.Fatal(err)
	}
	if len(net.on) != 0 || sip.CallCount() != 0 || !slices.Equal(sip.held[1], []string{"inside", "outside"}) || tk.Status().Owner ||
		tk.d.Keeper.active.Load() {
		t.Fatalf("after Remove: addresses %v, calls %d, held %v, status %+v", net.on, sip.CallCount(), sip.held, tk.Status())
	}
}

// A planned move starts on the owner only.
func TestMoveNeedsOwner(t *testing.T) {
	tk := New(Deps{SIP: &fakeSIP{}, Keeper: NewKeeper(&memWriter{}, slog.New(slog.DiscardHandler))})
	if _, err := tk.Move(context.Background(), time.Second, time.Second); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("move on a unit without floating addresses: %v, want ErrNotOwner", err)
	}
}
