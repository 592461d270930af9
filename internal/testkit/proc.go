package testkit

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Proc is a child process a test started: `palisade run`, kamailio, a peer.
// Proc waits for the process itself: wait on Done, never call Cmd.Wait
// (a second Wait blocks for ever).
type Proc struct {
	Cmd  *exec.Cmd
	done chan struct{}
}

// Start starts cmd and makes sure it is gone when the test ends: the
// cleanup sends SIGTERM and waits up to grace before it kills, or kills at
// once when grace is 0. A cmd started with Setpgid is signalled as a whole
// process group (for peers that fork workers), which holds only what this
// test started.
func Start(t testing.TB, cmd *exec.Cmd, grace time.Duration) *Proc {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.Stop(grace) })
	return p
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop ends the process as the cleanup does and waits for it.
func (p *Proc) Stop(grace time.Duration) {
	if p.Exited() {
		return
	}
	if grace > 0 {
		_ = p.signal(syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(grace):
		}
	}
	_ = p.signal(syscall.SIGKILL)
	<-p.done
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error { return p.signal(sig) }

func (p *Proc) signal(sig syscall.Signal) error {
	if a := p.Cmd.SysProcAttr; a != nil && a.Setpgid {
		return syscall.Kill(-p.Cmd.Process.Pid, sig)
	}
	return p.Cmd.Process.Signal(sig)
}

// WaitReady polls ready every interval until it reports true. It fails the
// test naming the process and showing log() when the process exits first,
// or after tries polls when tries > 0 (0: as long as the process lives).
func (p *Proc) WaitReady(t testing.TB, name string, ready func() bool, interval time.Duration, tries int, log func() string) {
	t.Helper()
	for i := 0; !ready(); i++ {
		if tries > 0 && i >= tries {
			t.Fatalf("%s not ready after %d tries:\n%s", name, tries, log())
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited early:\n%s", name, log())
		case <-time.After(interval):
		}
	}
}
