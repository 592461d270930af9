//go:build linux

package cli

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// TestPartitionedOwnerDropsAddresses cuts unit a from etcd (it reaches
// etcd through proxies the test closes) while it carries calls. With
// floating addresses a must drop them and forget the calls before b takes
// them (a fences itself within the lease; b wins only when the lease has
// gone at etcd); in rehome mode a must forget its calls before b moves
// them. Either way a holds no media port any more once fenced, b carries
// the calls on with media both ways, and the calls end with BYEs answered
// 200.
func TestPartitionedOwnerDropsAddresses(t *testing.T) {
	for _, tc := range []struct {
		mode, gone, took string
	}{
		{"", "ha: floating addresses given up", "ha: floating addresses taken"},
		{config.HAModeRehome, "ha: rehome: lease ", "ha: rehome: calls of a unit gone moved here"},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			p := newHAPair(t, tc.mode)
			storeA, proxies := p.etcd.Proxies(t, p.space)
			dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
			a := p.start(t, dirA, storeA, "a")
			b := p.start(t, dirB, p.storeURL, "b")
			bLog := func() string { return testkit.LastLines(b.log.String(), 60) }

			legs := p.placeCalls(t, 3, 1)
			mediaBack(t, legs, time.Now().Add(time.Second), func() string { return testkit.LastLines(a.log.String(), 40) })
			if n := metricSum(t, dirA, "palisade_media_ports_in_use"); n != float64(4*len(legs)) {
				t.Fatalf("a holds %v media ports for %d calls before the cut", n, len(legs))
			}
			before := mediaTargets(legs)
			cut := time.Now()
			for _, px := range proxies {
				px.Cut()
			}
			waitLog(t, a, tc.gone, 30*time.Second)
			waitLog(t, b, tc.took, 30*time.Second)
			gone, took := logTime(t, a.log.String(), tc.gone), logTime(t, b.log.String(), tc.took)
			t.Logf("a let go %v after the cut; b took over %v after that",
				gone.Sub(cut).Round(time.Millisecond), took.Sub(gone).Round(time.Millisecond))
			if !gone.Before(took) {
				t.Fatalf("b took over (%v) before a let go (%v)", took, gone)
			}
			mediaBack(t, legs, took, bLog)
			// a sends nothing any more: it carries no call and holds no
			// media port (the media the peers get now is b's).
			if n := metricSum(t, dirA, "palisade_media_ports_in_use"); n != 0 {
				t.Errorf("a, fenced, still holds %v media ports", n)
			}
			if n := metricSum(t, dirA, "palisade_media_calls_active"); n != 0 || answeredCalls(t, dirA) != 0 {
				t.Errorf("a, fenced, still relays %v calls", n)
			}
			if n := answeredCalls(t, dirB); n != len(legs) {
				t.Errorf("b carries %d calls, want %d", n, len(legs))
			}
			if tc.mode == config.HAModeRehome {
				checkMoved(t, p, legs, before)
			}
			p.byeAll(t, legs, bLog)
		})
	}
}

var logTimeRE = regexp.MustCompile(`time=(\S+)`)

// logTime is the time of the first line of log that has msg.
func logTime(t *testing.T, log, msg string) time.Time {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, msg) {
			continue
		}
		m := logTimeRE.FindStringSubmatch(l)
		if m == nil {
			break
		}
		ts, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		return ts
	}
	t.Fatalf("no %q with a time in the log", msg)
	return time.Time{}
}

// metricSum adds up every series of name in the unit's /metrics.
func metricSum(t *testing.T, dir, name string) float64 {
	t.Helper()
	var sum float64
	for _, l := range strings.Split(scrapeMetrics(t, dir), "\n") {
		if !strings.HasPrefix(l, name+" ") && !strings.HasPrefix(l, name+"{") {
			continue
		}
		f, err := strconv.ParseFloat(l[strings.LastIndex(l, " ")+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", l, err)
		}
		sum += f
	}
	return sum
}
