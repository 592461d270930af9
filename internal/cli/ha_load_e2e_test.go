//go:build linux

package cli

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palisade-sbc/palisade/internal/testkit"
)

// sippRun is a sipp UAC placing a bounded number of calls through a unit.
type sippRun struct {
	name string
	proc *testkit.Proc
	out  *testkit.SyncBuffer
}

// startSippUAC places calls calls at rate per second to dst, each held for
// hold before its BYE, from 127.0.0.1 (dialling service).
func startSippUAC(t *testing.T, name, dst, service string, calls, rate int, hold time.Duration) *sippRun {
	t.Helper()
	sipp := testkit.NeedBinary(t, "sipp", "sip-tester")
	r := &sippRun{name: name, out: &testkit.SyncBuffer{}}
	cmd := exec.Command(sipp, "-sn", "uac", "-i", "127.0.0.1", "-p", fmt.Sprint(testkit.FreePort(t, "udp", "127.0.0.1")),
		"-s", service, "-m", fmt.Sprint(calls), "-r", fmt.Sprint(rate), "-d", fmt.Sprint(hold.Milliseconds()),
		"-timeout", "120s", "-timeout_error", "-nostdin", "-trace_err", dst)
	cmd.Dir, cmd.Stdout, cmd.Stderr = t.TempDir(), r.out, r.out
	r.proc = testkit.Start(t, cmd, 0)
	return r
}

// startSippUAS answers every call on ip:port until the test ends.
func startSippUAS(t *testing.T, ip string, port int) {
	t.Helper()
	sipp := testkit.NeedBinary(t, "sipp", "sip-tester")
	cmd := exec.Command(sipp, "-sn", "uas", "-i", ip, "-p", fmt.Sprint(port), "-nostdin")
	cmd.Dir = t.TempDir()
	testkit.Start(t, cmd, 0)
}

// wait waits for the UAC to end and fails the test unless every call
// succeeded (sipp exits 0 only then: every INVITE and BYE answered 200).
func (r *sippRun) wait(t *testing.T, limit time.Duration, unitLog func() string) {
	t.Helper()
	select {
	case <-r.proc.Done():
	case <-time.After(limit):
		t.Fatalf("sipp %s still running after %v:\n%s", r.name, limit, testkit.LastLines(r.out.String(), 40))
	}
	if code := r.proc.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("sipp %s: exit %d (some calls failed):\n%s\nerrors:\n%s\nunit log:\n%s", r.name, code,
			testkit.LastLines(r.out.String(), 40), sippErrors(r.proc.Cmd.Dir), unitLog())
	}
	t.Logf("sipp %s: every call succeeded", r.name)
}

// sippErrors is the tail of sipp's error trace in dir.
func sippErrors(dir string) string {
	out, _ := exec.Command("sh", "-c", "tail -n 40 "+dir+"/*_errors.log").CombinedOutput()
	return string(out)
}

// recordWrites counts what the units write to etcd under the call
// records' prefix, by watching it: puts, deletes and bytes (keys and
// values), leaving out the keys the test itself puts.
type recordWrites struct {
	mu                  sync.Mutex
	puts, deletes, size int
}

func watchRecords(t *testing.T, cli *clientv3.Client, prefix string, skip ...string) *recordWrites {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := &recordWrites{}
	ch := cli.Watch(ctx, prefix, clientv3.WithPrefix())
	go func() {
		for resp := range ch {
			w.mu.Lock()
			for _, ev := range resp.Events {
				if slices.Contains(skip, strings.TrimPrefix(string(ev.Kv.Key), prefix)) {
					continue
				}
				w.size += len(ev.Kv.Key)
				if ev.Type == clientv3.EventTypePut {
					w.puts++
					w.size += len(ev.Kv.Value)
				} else {
					w.deletes++
				}
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *recordWrites) report(t *testing.T, calls int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("etcd writes of call records: %d puts, %d deletes, %d bytes for %d calls: %.1f writes and %.0f bytes per call",
		w.puts, w.deletes, w.size, calls, float64(w.puts+w.deletes)/float64(calls), float64(w.size)/float64(calls))
}

// gapSummary prints the median and the largest of the media gaps of one
// direction and fails the test for a gap that means a dropped call
// (media stopped for more than 5 s: the definition).
func gapSummary(t *testing.T, direction string, gaps []time.Duration) {
	t.Helper()
	s := slices.Clone(gaps)
	slices.Sort(s)
	t.Logf("media gap %s over %d calls: median %v, max %v", direction, len(s),
		s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
	for i, g := range gaps {
		if g > 5*time.Second {
			t.Errorf("call %d: media %s stopped for %v: the call is dropped", i, direction, g.Round(time.Millisecond))
		}
	}
}
