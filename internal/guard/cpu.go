package guard

import (
	"bytes"
	"math"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// CPU overload: the process's own CPU time (utime+stime from
// /proc/self/stat) as a share of the cores it may use. Above cpuHigh on two
// samples in a row new calls are refused; below cpuLow they are accepted
// again. The gap avoids flapping; refusing new calls early keeps the cores
// for the calls in progress (their media and in-dialog requests).
const (
	cpuSampleEvery = 500 * time.Millisecond
	cpuHigh        = 0.90
	cpuLow         = 0.75
	clockTicks     = 100 // USER_HZ on Linux
)

// File descriptors: every call holds sockets (media), so a unit pushed
// past its capacity runs out of descriptors before memory; above fdHigh of
// RLIMIT_NOFILE new calls are refused until use falls below fdLow.
const (
	fdHigh       = 0.80
	fdLow        = 0.70
	fdCheckEvery = 4 // samples (2 s): counting /proc/self/fd costs a little
)

type cpuMonitor struct {
	overloaded atomic.Bool
	fdsHigh    atomic.Bool
	samples    int
	lastFD     float64       // share at the last check
	dirBuf     []byte        // getdents buffer of countFDs
	lastShare  atomic.Uint64 // float64 bits
	prevTicks  uint64
	prevAt     time.Time
	highRuns   int
}

func (c *cpuMonitor) init() { c.prevTicks, c.prevAt = procTicks(), time.Now() }

func (c *cpuMonitor) last() float64 { return math.Float64frombits(c.lastShare.Load()) }

// sample takes one measurement; changed reports a switch of the overload
// state (on = the new state).
func (c *cpuMonitor) sample() (on, changed bool) {
	ticks, now := procTicks(), time.Now()
	dt := now.Sub(c.prevAt).Seconds()
	if ticks == 0 || dt <= 0 {
		return c.overloaded.Load(), false
	}
	share := float64(ticks-c.prevTicks) / clockTicks / dt / float64(runtime.GOMAXPROCS(0))
	c.prevTicks, c.prevAt = ticks, now
	c.lastShare.Store(math.Float64bits(share))
	cpuShare.Set(share)
	return c.decide(share)
}

// sampleFDs checks the descriptor use every fdCheckEvery samples; changed
// reports a switch (on = the new state).
func (c *cpuMonitor) sampleFDs() (on, changed bool) {
	// Every sample once half the descriptors are in use: they can go fast.
	if c.samples++; c.samples%fdCheckEvery != 0 && c.lastFD < 0.5 {
		return c.fdsHigh.Load(), false
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == 0 {
		return c.fdsHigh.Load(), false
	}
	n, err := c.countFDs()
	if err != nil {
		return c.fdsHigh.Load(), false
	}
	return c.decideFDs(float64(n) / float64(lim.Cur))
}

// countFDs counts the entries of /proc/self/fd with getdents(2) into a
// buffer kept between checks. os.ReadDir made a DirEntry and a name string
// per descriptor: with tens of thousands of media sockets open that was 7 %
// of a loaded unit's CPU, most of it garbage (bench/sip/RESULTS.md).
func (c *cpuMonitor) countFDs() (int, error) {
	fd, err := syscall.Open("/proc/self/fd", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer syscall.Close(fd)
	if c.dirBuf == nil {
		c.dirBuf = make([]byte, 64<<10)
	}
	n := -1 // the directory's own descriptor is listed too
	for {
		got, err := syscall.ReadDirent(fd, c.dirBuf)
		if err != nil {
			return 0, err
		}
		if got <= 0 {
			break
		}
		for b := c.dirBuf[:got]; len(b) >= 19; { // linux_dirent64: ino 8, off 8, reclen 2, type 1, name
			reclen := int(b[16]) | int(b[17])<<8
			if reclen == 0 || reclen > len(b) {
				break
			}
			if name := b[19:reclen]; name[0] != '.' {
				n++
			}
			b = b[reclen:]
		}
	}
	return max(n, 0), nil
}

func (c *cpuMonitor) decideFDs(share float64) (on, changed bool) {
	fdShare.Set(share)
	c.lastFD = share
	was := c.fdsHigh.Load()
	switch {
	case share >= fdHigh && !was:
		c.fdsHigh.Store(true)
		return true, true
	case share < fdLow && was:
		c.fdsHigh.Store(false)
		return false, true
	}
	return was, false
}

// decide applies the hysteresis to one measured share.
func (c *cpuMonitor) decide(share float64) (on, changed bool) {
	was := c.overloaded.Load()
	switch {
	case share >= cpuHigh:
		c.highRuns++
		if c.highRuns >= 2 && !was {
			c.overloaded.Store(true)
			cpuOverloaded.Set(1)
			return true, true
		}
	case share < cpuLow:
		c.highRuns = 0
		if was {
			c.overloaded.Store(false)
			cpuOverloaded.Set(0)
			return false, true
		}
	default:
		c.highRuns = 0
	}
	return was, false
}

// procTicks is utime+stime of this process in clock ticks; 0 if unknown.
func procTicks() uint64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	return parseStatTicks(b)
}

// parseStatTicks reads fields 14 and 15 of a /proc/PID/stat line. The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatTicks(b []byte) uint64 {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	s, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return u + s
}
