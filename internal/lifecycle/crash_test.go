package lifecycle

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
)

// The crash test (issue 2, item 7): a child process runs edit → apply →
// confirm loops, with some applies left unconfirmed, on a real SQLite data
// directory; the parent kills it with SIGKILL at many different moments and
// after every kill checks what a restarting unit would find.

const crashChildEnv = "PALISADE_LIFECYCLE_CRASH_CHILD"

type nopApplier struct{}

func (nopApplier) Apply(context.Context, *config.Config) error { return nil }

// TestCrashChild is the child's role; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("child role of TestCrashSafety")
	}
	ctx := context.Background()
	st, err := store.Open(dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	m, err := New(st, nopApplier{}, nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	if _, err := m.StartupConfig(ctx); err != nil {
		if err := m.Bootstrap(ctx, config.Default(), "crash-child"); err != nil {
			fmt.Println("error", err)
			os.Exit(3)
		}
	}
	fmt.Println("ready")
	fail := func(what string, err error) {
		fmt.Println("error", what, err)
		os.Exit(3)
	}
	for i := 0; ; i++ {
		h, err := m.History(ctx)
		if err != nil {
			fail("history", err)
		}
		next := h[len(h)-1].Number + 1
		c, etag, err := m.Preliminary(ctx)
		if err != nil {
			fail("preliminary", err)
		}
		confirm := i%3 != 2
		if confirm {
			c.Unit.Name = fmt.Sprintf("v%d", next)
		} else {
			c.Unit.Name = fmt.Sprintf("unconfirmed-%d", i)
		}
		c.SIP.MaxForwards = 1 + i%200
		if _, err := m.SetPreliminary(ctx, c, etag, "crash-child"); err != nil {
			fail("set", err)
		}
		if _, err := m.Apply(ctx, time.Hour, "crash-child"); err != nil {
			fail("apply", err)
		}
		if !confirm {
			if err := m.Revert(ctx, "crash-child"); err != nil {
				fail("revert", err)
			}
			continue
		}
		v, err := m.Confirm(ctx, "crash-child")
		if err != nil {
			fail("confirm", err)
		}
		if v.Number != next {
			fail("confirm", fmt.Errorf("got version %d, want %d", v.Number, next))
		}
		fmt.Println("confirmed", v.Number)
	}
}

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	dir := t.TempDir()
	const maxKills = 40
	budget := time.Now().Add(20 * time.Second)
	var confirmed atomic.Int64 // highest version a child reported confirmed
	kills := 0
	for kills < maxKills && time.Now().Before(budget) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan struct{})
		done := make(chan string)
		go func() {
			var bad string
			sc := bufio.NewScanner(out)
			closed := false
			for sc.Scan() {
				line := sc.Text()
				switch {
				case line == "ready" && !closed:
					close(ready)
					closed = true
				case strings.HasPrefix(line, "confirmed "):
					n, _ := strconv.Atoi(strings.TrimPrefix(line, "confirmed "))
					for {
						cur := confirmed.Load()
						if int64(n) <= cur || confirmed.CompareAndSwap(cur, int64(n)) {
							break
						}
					}
				case strings.HasPrefix(line, "error"):
					bad = line
				}
			}
			done <- bad
		}()
		// Half of the kills count from the process start (hitting opening,
		// migration and bootstrap), half from "ready" (hitting the loop).
		if kills%2 == 1 {
			select {
			case <-ready:
			case <-time.After(30 * time.Second):
			}
		}
		time.Sleep(time.Duration(rand.IntN(120)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if bad := <-done; bad != "" {
			t.Fatalf("child failed: %s", bad)
		}
		kills++
		checkAfterCrash(t, dir, int(confirmed.Load()))
	}
	t.Logf("%d kills; highest confirmed version reported: %d", kills, confirmed.Load())
	if kills < 10 || confirmed.Load() < 5 {
		t.Fatalf("the test exercised too little: %d kills, %d versions confirmed", kills, confirmed.Load())
	}
}

// checkAfterCrash opens the data directory as a restarting unit would.
func checkAfterCrash(t *testing.T, dir string, confirmed int) {
	t.Helper()
	ctx := context.Background()
	if _, err := os.Stat(dir + "/" + store.FileName); os.IsNotExist(err) {
		return // killed before the database existed
	}
	st, err := store.Open(dir)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer st.Close()
	if err := st.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	cfg, v, err := StartupConfig(ctx, st)
	if err != nil {
		if confirmed == 0 && strings.Contains(err.Error(), "no saved configuration") {
			return // killed before bootstrap committed
		}
		t.Fatalf("startup configuration after kill: %v", err)
	}
	if v.Number < confirmed {
		t.Fatalf("startup version %d, but version %d was confirmed", v.Number, confirmed)
	}
	if want := versionName(v.Number); cfg.Unit.Name != want {
		t.Fatalf("startup configuration is %q, want %q (an unconfirmed configuration?)", cfg.Unit.Name, want)
	}
	m, err := New(st, nopApplier{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h, err := m.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, hv := range h {
		if hv.Number != i+1 {
			t.Fatalf("history has version %d at position %d", hv.Number, i)
		}
		c, err := m.Version(ctx, hv.Number)
		if err != nil {
			t.Fatalf("version %d unreadable: %v", hv.Number, err)
		}
		if c.Unit.Name != versionName(hv.Number) {
			t.Fatalf("version %d holds %q", hv.Number, c.Unit.Name)
		}
	}
	if len(h) != v.Number {
		t.Fatalf("history has %d versions, startup is %d", len(h), v.Number)
	}
	s, err := m.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	run, _ := m.Running(ctx)
	if s.PendingConfirm || s.RunningVersion != v.Number || run.Unit.Name != cfg.Unit.Name {
		t.Fatalf("after restart: state %+v, running %q", s, run.Unit.Name)
	}
	if _, _, err := m.Preliminary(ctx); err != nil {
		t.Fatalf("preliminary after kill: %v", err)
	}
}

func versionName(n int) string {
	if n == 1 {
		return "palisade"
	}
	return fmt.Sprintf("v%d", n)
}
