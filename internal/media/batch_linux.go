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
// While packets flow, the sleeps and the looks are raw system calls: the
// runtime is not told, so it does not hand the worker's P to another
// thread and wake its monitor for every wait (measured: that doubled the
// context switches and cost more than the batching saved). The worker then
// keeps its P, and the relay raises GOMAXPROCS by one for each batch
// worker relaying (procs.go) so that the rest of the program keeps as many
// as before; a stop-the-world's preemption signal ends a sleep early
// (EINTR) and the goroutine stops at its next call. Only when a look finds
// nothing does the worker wait as the runtime knows (the P is free while
// the relay is idle).

// batchSupported: this file is built.
const batchSupported = true

// minBatchSleep: a remainder shorter than this is not worth a sleep (the
// timer's own wake-up costs more than it saves).
const minBatchSleep = 20 * time.Microsecond

func (w *worker) runBatched() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer unix.Close(w.epfd)
	defer w.exit()
	// The kernel's default slack (50 µs) would stretch each sleep.
	unix.Prctl(unix.PR_SET_TIMERSLACK, 1000, 0, 0, 0)
	defer w.setRealtime(0) // the thread goes back to Go's pool as it came
	for {
		if p := w.relay.rtPrio.Load(); p != w.prio {
			w.setRealtime(p)
		}
		n, e := rawEpollWait(w.epfd, w.events, 0)
		if n == 0 && e == 0 {
			// Nothing waiting: the relay is idle or nearly so. This wait
			// may be long, so the runtime is told (it may use the P
			// meanwhile, and a stop-the-world need not wake us). A worker
			// that holds a P gives it back after idleGiveBack of this.
			msec := -1
			if w.held.Load() {
				msec = max(int(idleGiveBack.Load()/int64(time.Millisecond)), 1)
			}
			if n, e = idleEpollWait(w.epfd, w.events, msec); n == 0 && e == 0 {
				w.relay.holdP(w, false)
				continue
			}
		}
		if n > 0 && !w.held.Load() {
			w.relay.holdP(w, true)
		}
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

// setRealtime puts the worker's thread under SCHED_FIFO at priority p
// (media.realtime_priority), or back under the normal scheduler (p 0).
// Why: on a busy host any other runnable thread on the worker's CPU (the
// kernel's softirq thread among them) delays a woken worker by its time
// slice, milliseconds, and every packet waiting with it: that was the p99
// of bench/media (RESULTS.md, run 9). Without CAP_SYS_NICE the change is
// refused; it is logged once and the worker goes on as it was.
func (w *worker) setRealtime(p int32) {
	attr := unix.SchedAttr{Policy: unix.SCHED_NORMAL}
	if p > 0 {
		attr.Policy, attr.Priority = unix.SCHED_FIFO, uint32(p)
	}
	err := unix.SchedSetAttr(0, &attr, 0)
	if err != nil && p != 0 {
		if !w.relay.rtWarned.Swap(true) {
			w.relay.log.Warn("media: realtime_priority not applied (needs CAP_SYS_NICE)", "priority", p, "err", err)
		}
	}
	w.prio = p
}

func idleEpollWait(epfd int, events []unix.EpollEvent, msec int) (int, unix.Errno) {
	n, _, e := unix.Syscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), uintptr(msec), 0, 0) // -1: until a packet or a command
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

func rawEpollWait(epfd int, events []unix.EpollEvent, msec int) (int, unix.Errno) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}
