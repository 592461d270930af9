package observe

import (
	"testing"
	"time"
)

// The status dates each peer's up/down change by the sample that first saw
// it, keeps that date while the state holds, and forgets removed peers.
func TestPeerChangesSince(t *testing.T) {
	var pc PeerChanges
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	steps := []struct {
		name  string
		in    []PeerStatus
		now   time.Time
		want  map[string]time.Time
		state map[string]string
	}{
		{"first sight", []PeerStatus{{Name: "itsp", Up: true}, {Name: "pbx", Up: true}}, at(0),
			map[string]time.Time{"itsp": at(0), "pbx": at(0)}, map[string]string{"itsp": "up", "pbx": "up"}},
		{"no change keeps the time", []PeerStatus{{Name: "pbx", Up: true}, {Name: "itsp", Up: true, Failures: 1}}, at(5),
			map[string]time.Time{"itsp": at(0), "pbx": at(0)}, map[string]string{"itsp": "up", "pbx": "up"}},
		{"itsp goes down", []PeerStatus{{Name: "itsp", Up: false, Failures: 3}, {Name: "pbx", Up: true}}, at(9),
			map[string]time.Time{"itsp": at(9), "pbx": at(0)}, map[string]string{"itsp": "down", "pbx": "up"}},
		{"still down", []PeerStatus{{Name: "itsp", Up: false, Failures: 4}, {Name: "pbx", Up: true}}, at(20),
			map[string]time.Time{"itsp": at(9), "pbx": at(0)}, map[string]string{"itsp": "down", "pbx": "up"}},
		{"back up, pbx removed", []PeerStatus{{Name: "itsp", Up: true}}, at(30),
			map[string]time.Time{"itsp": at(30)}, map[string]string{"itsp": "up"}},
		{"pbx again is new", []PeerStatus{{Name: "itsp", Up: true}, {Name: "pbx", Up: true}}, at(40),
			map[string]time.Time{"itsp": at(30), "pbx": at(40)}, map[string]string{"itsp": "up", "pbx": "up"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			for i := range st.in {
				st.in[i].Keepalive, st.in[i].LastCheck = true, t0
			}
			got := pc.Observe(st.in, st.now)
			if len(got) != len(st.want) {
				t.Fatalf("got %d peers, want %d", len(got), len(st.want))
			}
			for i, p := range got {
				if i > 0 && got[i-1].Name > p.Name {
					t.Errorf("not sorted: %s before %s", got[i-1].Name, p.Name)
				}
				if !p.Since.Equal(st.want[p.Name]) || p.State != st.state[p.Name] {
					t.Errorf("%s: state %s since %v, want %s since %v", p.Name, p.State, p.Since, st.state[p.Name], st.want[p.Name])
				}
			}
		})
	}
}

// Once a source is set, the service's sampling dates changes without any
// status read in between.
func TestPeerChangesSample(t *testing.T) {
	var pc PeerChanges
	up := true
	pc.Follow(func() []PeerStatus { return []PeerStatus{{Name: "itsp", Up: up, Keepalive: true}} })
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pc.sample(t0)
	up = false
	pc.sample(t0.Add(7 * time.Second))
	got := pc.Observe([]PeerStatus{{Name: "itsp", Up: false}}, t0.Add(60*time.Second))
	if got[0].State != "down" || !got[0].Since.Equal(t0.Add(7*time.Second)) {
		t.Fatalf("got %+v, want down since +7s", got[0])
	}
}

// A peer is "up" only after a check saw it answer: before the first check it
// is "unchecked", without keepalive "unmonitored"; the date follows the word.
func TestPeerStateWords(t *testing.T) {
	checked := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		in   PeerStatus
		want string
	}{
		{PeerStatus{Up: true, Keepalive: true}, PeerUnchecked},
		{PeerStatus{Up: true, Keepalive: true, LastCheck: checked}, PeerUp},
		{PeerStatus{Up: false, Keepalive: true, LastCheck: checked}, PeerDown},
		{PeerStatus{Up: true}, PeerUnmonitored},
		{PeerStatus{Up: false}, PeerDown},
	} {
		if got := peerState(c.in); got != c.want {
			t.Errorf("%+v: %s, want %s", c.in, got, c.want)
		}
	}
	var pc PeerChanges
	pc.Observe([]PeerStatus{{Name: "itsp", Up: true, Keepalive: true}}, checked)
	got := pc.Observe([]PeerStatus{{Name: "itsp", Up: true, Keepalive: true, LastCheck: checked}}, checked.Add(3*time.Second))
	if got[0].State != PeerUp || !got[0].Since.Equal(checked.Add(3*time.Second)) {
		t.Fatalf("got %+v, want up since the first check was seen", got[0])
	}
}
