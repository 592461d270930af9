//go:build linux

package media

import (
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batched wake-ups. At 50 packets per second per stream nearly every
// packet that the Go-poller worker handles costs a whole wake-up: Go's
// poller, the scheduler looking for work, a context switch, which on a VM
// cost several times the receive and send themselves. In batch mode the
// worker keeps an OS thread of its own, waits in epoll_wait on its set,
// and after a round that relayed packets sleeps until `batch` after the
// round began before it looks again: the packets of every call that
// arrived meanwhile are then read and sent in the next round, one wake-up
// for all of them. A packet waits at most `batch` plus a round longer than
// with the Go-poller worker; an idle relay sleeps in epoll_wait and wakes
// for the first packet at once.
//
// The waits are raw system calls: the runtime is not told, so it does not
// hand the worker's P to another thread and wake its monitor for every
// wait (measured: that doubled the context switches and cost more than
// the batching saved). The worker therefore keeps its P for good, and the
// relay raises GOMAXPROCS by one per batch worker so that the rest of the
// program keeps as many as before. A stop-the-world's preemption signal
// ends a wait early (EINTR) and the goroutine stops at its next call; an
// idle wait is bounded anyway, in case signals are off.

// batchSupported: this file is built.
const batchSupported = true

// minBatchSleep: a remainder shorter than this is not worth a sleep (the
// timer's own wake-up costs more than it saves).
const minBatchSleep = 20 * time.Microsecond

// idleWaitMs bounds an idle wait (see above).
const idleWaitMs = 10

func (w *worker) runBatched() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer unix.Close(w.epfd)
	defer w.exit()
	// The kernel's default slack (50 µs) would stretch each sleep.
	unix.Prctl(unix.PR_SET_TIMERSLACK, 1000, 0, 0, 0)
	for {
		n, e := rawEpollWait(w.epfd, w.events, idleWaitMs)
		if e != 0 && e != unix.EINTR {
			w.relay.log.Error("media: epoll_wait failed, worker stops", "err", e)
			return
		}
		start := monoNow()
		got := w.serve(n)
		if w.quit.Load() {
			return
		}
		if got == 0 {
			continue
		}
		if rem := time.Duration(w.relay.batchNs.Load() - (monoNow() - start)); rem >= minBatchSleep {
			ts := unix.NsecToTimespec(int64(rem))
			unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
		}
	}
}

func rawEpollWait(epfd int, events []unix.EpollEvent, msec int) (int, unix.Errno) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}
