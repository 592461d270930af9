package cli

import (
	"log/slog"
	"slices"
	"testing"

	"github.com/palisade-sbc/palisade/internal/store"
)

// The composition root lists every subsystem once, in the order they
// depend on each other, with the admin listener it returns last.
func TestWireSubsystemsOrder(t *testing.T) {
	w := wireSubsystems(Deps{DataDir: t.TempDir(), Store: store.NewMemory(), Log: slog.New(slog.DiscardHandler)})
	var names []string
	for _, s := range w.subs {
		names = append(names, s.Name())
	}
	t.Cleanup(func() {
		for _, s := range slices.Backward(w.subs) {
			s.Close()
		}
	})
	want := []string{"acme", "pki", "observe", "hep", "syslog", "media", "registrar", "guard", "sip", "accounts", "admin"}
	if !slices.Contains(names, "media") { // no epoll here: SDP passes unchanged
		want = slices.DeleteFunc(want, func(n string) bool { return n == "media" })
	}
	if !slices.Equal(names, want) {
		t.Errorf("subsystems %v, want %v", names, want)
	}
	if w.admin == nil || w.subs[len(w.subs)-1] != w.admin {
		t.Error("the admin listener is not the last subsystem")
	}
}
