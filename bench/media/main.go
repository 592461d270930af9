// Command media is the media relay benchmark (make bench-media).
//
// It starts the relay (media.Relay, the code the unit runs) in a child
// process with a small HTTP control interface, sets up -calls calls through
// it the way the SIP layer does (offer from the inside, answer from the
// outside), then sends G.711-sized RTP both ways: plain RTP on the inside
// leg, SRTP (AES_CM_128_HMAC_SHA1_80) on the outside leg, spread evenly
// over each 20 ms. It prints one RESULT line: loss, added latency, the
// relay process's CPU per relayed packet (utime+stime from /proc/PID/stat)
// and memory per call.
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

func main() {
	role := flag.String("role", "load", "load (generator; starts the relay) or relay")
	calls := flag.Int("calls", 1000, "concurrent calls (streams = 2 * calls)")
	dur := flag.Duration("duration", 15*time.Second, "send duration (at most 20s)")
	pps := flag.Int("pps", 50, "packets per second per stream")
	size := flag.Int("size", 172, "RTP packet size in bytes (12 header + payload)")
	poll := flag.Duration("gen-poll", 50*time.Microsecond, "generator: sleep between polls of its sockets (adds up to this much to the measured latency)")
	genCPU := flag.Int("gen-cpu", -1, "pin the generator's thread to this CPU (-1: no pinning)")
	portMin := flag.Int("port-min", 20000, "relay port range start (keep it below the ephemeral ports)")
	portMax := flag.Int("port-max", 29999, "relay port range end")
	relayCPUs := flag.String("relay-cpus", "", "taskset CPU list for the relay process (empty: no pinning)")
	profile := flag.String("relay-cpuprofile", "", "write the relay's CPU profile to this file")
	procs := flag.Int("relay-gomaxprocs", 0, "GOMAXPROCS of the relay process (0: Go's default, one per CPU); the relay runs one worker per P")
	relays := flag.String("relays", "palisade", "relays to measure one after the other: palisade, rtpengine or both (palisade,rtpengine)")
	callsList := flag.String("calls-list", "", "comma-separated numbers of calls, each measured with every relay (overrides -calls)")
	pin := flag.Bool("pin", false, "pin the relay to CPU 0 and the generator to CPU 1 (taskset; overrides -relay-cpus and -gen-cpu)")
	rtpeThreads := flag.Int("rtpengine-threads", 2, "rtpengine --num-threads")
	batch := flag.Duration("batch-interval", -1, "Palisade relay's media.batch_interval (negative: the default configuration's)")
	rt := flag.Int("realtime", 0, "both relays' worker threads under SCHED_FIFO at this priority (Palisade: media.realtime_priority; rtpengine: --scheduling=fifo --priority); 0: normal scheduling")
	logFile := flag.String("log", "", "also append the RESULT lines to this file (bench/plot reads it)")
	flag.Parse()
	if *role == "relay" {
		if *profile != "" {
			f, err := os.Create(*profile)
			if err == nil {
				pprof.StartCPUProfile(f)
				defer pprof.StopCPUProfile()
			}
		}
		if err := runRelay(*portMin, *portMax, *batch, *rt); err != nil && !strings.Contains(err.Error(), "closed") {
			fmt.Fprintln(os.Stderr, "relay:", err)
			os.Exit(1)
		}
		return
	}
	counts := []int{*calls}
	if *callsList != "" {
		counts = counts[:0]
		for _, f := range strings.Split(*callsList, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				n = -1
			}
			counts = append(counts, n)
		}
	}
	for _, n := range counts {
		if *dur > 20*time.Second || n < 1 || n > 5000 || *size < 20 || *size > 1400 || len(counts) > 8 {
			fmt.Fprintln(os.Stderr, "bad arguments: duration <= 20s, 1 <= calls <= 5000 (at most 8 values), 20 <= size <= 1400")
			os.Exit(2)
		}
	}
	o := loadOpts{dur: *dur, pps: *pps, size: *size, poll: *poll, genCPU: *genCPU,
		portMin: *portMin, portMax: *portMax, relayCPUs: *relayCPUs, profile: *profile, procs: *procs, rtpeThreads: *rtpeThreads, batch: *batch, realtime: *rt}
	if *pin {
		o.relayCPUs, o.genCPU, o.pinned = "0", 1, true
	}
	var out io.Writer = os.Stdout
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench-media:", err)
			os.Exit(1)
		}
		defer f.Close()
		out = io.MultiWriter(os.Stdout, f)
	}
	failed := false
	for _, n := range counts {
		for _, relay := range strings.Split(*relays, ",") {
			o.calls, o.relay = n, strings.TrimSpace(relay)
			if err := runLoad(o, out); err != nil {
				fmt.Fprintf(os.Stderr, "bench-media: %s, %d calls: %v\n", o.relay, n, err)
				failed = true
			}
		}
	}
	if failed {
		os.Exit(1)
	}
}

type loadOpts struct {
	calls, pps, size, genCPU int
	dur, poll                time.Duration
	portMin, portMax, procs  int
	relayCPUs, profile       string
	relay                    string // palisade or rtpengine
	pinned                   bool
	rtpeThreads              int
	batch                    time.Duration // Palisade's media.batch_interval; < 0: default
	realtime                 int           // SCHED_FIFO priority of both relays' workers (0: none)
}

// relay is the system under test, driven the way the SIP layer would:
// an offer from the inside endpoint (plain RTP), the answer from the
// outside endpoint (SRTP, SDES).
type relay interface {
	name() string
	pid() int // the process whose CPU is measured
	offer(id string, sdp []byte) ([]byte, error)
	answer(id string, sdp []byte) ([]byte, error)
	memKiB() uint64 // Go heap + stacks in use after GC (0: not known)
	closeCalls()
	stop()
}

func (r *relayProc) name() string { return "palisade" }
func (r *relayProc) pid() int     { return r.cmd.Process.Pid }
func (r *relayProc) offer(id string, sdp []byte) ([]byte, error) {
	return r.post("/offer?id="+id+"&side=a", sdp)
}
func (r *relayProc) answer(id string, sdp []byte) ([]byte, error) {
	return r.post("/answer?id="+id+"&side=b", sdp)
}
func (r *relayProc) memKiB() uint64 {
	b, _ := r.post("/mem", nil)
	var heap uint64
	fmt.Sscan(string(b), &heap)
	return heap / 1024
}
func (r *relayProc) closeCalls() { r.post("/close", nil) }

type relayProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	control string
}

func startRelay(o loadOpts) (*relayProc, error) {
	portMin, portMax, cpus, profile, procs := o.portMin, o.portMax, o.relayCPUs, o.profile, o.procs
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-role", "relay", "-port-min", strconv.Itoa(portMin), "-port-max", strconv.Itoa(portMax), "-relay-cpuprofile", profile, "-batch-interval", o.batch.String(), "-realtime", strconv.Itoa(o.realtime)}
	cmd := exec.Command(self, args...)
	if cpus != "" {
		cmd = exec.Command("taskset", append([]string{"-c", cpus, self}, args...)...)
	}
	cmd.Stderr = os.Stderr
	if procs > 0 {
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs))
	}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "CONTROL ") {
		cmd.Process.Kill()
		return nil, fmt.Errorf("relay did not start: %q %v", line, err)
	}
	return &relayProc{cmd: cmd, stdin: stdin, control: "http://" + strings.TrimSpace(line[8:])}, nil
}

func (r *relayProc) stop() {
	r.stdin.Close()
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		r.cmd.Process.Kill() // by PID, ours
		<-done
	}
}

func (r *relayProc) post(path string, body []byte) ([]byte, error) {
	resp, err := http.Post(r.control+path, "application/sdp", strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: %d %s", path, resp.StatusCode, b)
	}
	return b, nil
}

// boxBusyTicks is the busy time of all CPUs together (from /proc/stat), to
// tell how much other work ran on the box during a run.
func boxBusyTicks() uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var busy uint64
	for i, f := range strings.Fields(line)[1:] {
		n, _ := strconv.ParseUint(f, 10, 64)
		if i != 3 && i != 4 && i < 8 { // not idle, iowait; guest time is in user already
			busy += n
		}
	}
	return busy
}

// cpuTicks is utime+stime of pid in clock ticks (exact per process, unlike /proc/stat here).
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st, nil
}

func rssKiB(pid int) uint64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			n, _ := strconv.ParseUint(strings.Fields(l)[1], 10, 64)
			return n
		}
	}
	return 0
}

// stream is one endpoint of one call (one direction of sending).
type stream struct {
	side   int // 0 inside (plain RTP), 1 outside (SRTP)
	port   int // the generator socket it uses
	dst    netip.AddrPort
	to     unix.RawSockaddrInet4
	tx     *srtp.Context // outside endpoint: encrypts what it sends
	rx     *srtp.Context // outside endpoint: decrypts samples of what it gets
	dec    [2048]byte
	ssrc   uint32
	seq    uint16
	sent   uint64
	recv   uint64
	decErr uint64
}

func sdpFor(port int, proto, extra string) []byte {
	return []byte(fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=bench\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d %s 8\r\na=rtpmap:8 PCMA/8000\r\na=ptime:20\r\n%s", port, proto, extra))
}

// learn returns where the relay wants media and its AES_CM_128_HMAC_SHA1_80 key (if any).
func learn(body []byte) (netip.AddrPort, *sdp.Crypto, error) {
	s, err := sdp.Parse(body)
	if err != nil || len(s.Media) == 0 {
		return netip.AddrPort{}, nil, fmt.Errorf("relay SDP: %v", err)
	}
	m := s.Media[0]
	a, _ := s.MediaConn(m)
	for _, v := range m.Attrs("crypto") {
		if k, err := sdp.ParseCrypto(v); err == nil && k.Suite == sdp.SuiteAES80 {
			return netip.AddrPortFrom(a, uint16(m.Port)), &k, nil
		}
	}
	return netip.AddrPortFrom(a, uint16(m.Port)), nil, nil
}

func ctxFor(k []byte) (*srtp.Context, error) {
	return srtp.CreateContext(k[:16], k[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
}

func runLoad(o loadOpts, out io.Writer) error {
	calls := o.calls
	floor, err := loopbackFloorUs(o.genCPU)
	if err != nil {
		return err
	}
	var rp relay
	switch o.relay {
	case "palisade":
		rp, err = startRelay(o)
	case "rtpengine":
		rp, err = startRtpengine(o)
	default:
		err = fmt.Errorf("unknown relay %q (palisade or rtpengine)", o.relay)
	}
	if err != nil {
		return err
	}
	defer rp.stop()
	pid := rp.pid()
	heap0 := rp.memKiB()
	rss0 := rssKiB(pid)

	g := &genLoop{period: time.Second / time.Duration(o.pps), size: o.size, poll: o.poll}
	for side := range g.socks {
		if g.socks[side], err = newRawSock(); err != nil {
			return err
		}
		defer unix.Close(g.socks[side].fd)
	}
	// [2i] inside (plain), [2i+1] outside (SRTP); SSRC = index + 1.
	for i := 0; i < 2*calls; i++ {
		g.streams = append(g.streams, &stream{side: i & 1, port: g.socks[i&1].port, ssrc: uint32(i + 1)})
	}
	setup0 := time.Now()
	for i := 0; i < calls; i++ {
		in, out := g.streams[2*i], g.streams[2*i+1]
		id := strconv.Itoa(i)
		offer, err := rp.offer(id, sdpFor(in.port, "RTP/AVP", ""))
		if err != nil {
			return err
		}
		var relayKey *sdp.Crypto
		if out.dst, relayKey, err = learn(offer); err != nil || relayKey == nil {
			return fmt.Errorf("offer to the outside has no AES_CM_128_HMAC_SHA1_80 key: %v", err)
		}
		key := make([]byte, 30)
		rand.Read(key)
		if out.tx, err = ctxFor(key); err != nil {
			return err
		}
		if out.rx, err = ctxFor(relayKey.Key); err != nil {
			return err
		}
		mine := sdp.Crypto{Tag: relayKey.Tag, Suite: sdp.SuiteAES80, Key: key}
		answer, err := rp.answer(id, sdpFor(out.port, "RTP/SAVP", "a=crypto:"+mine.String()+"\r\n"))
		if err != nil {
			return err
		}
		if in.dst, _, err = learn(answer); err != nil {
			return err
		}
	}
	setup := time.Since(setup0)
	heap1 := rp.memKiB()
	rss1 := rssKiB(pid)
	for _, s := range g.streams {
		s.to.Family = unix.AF_INET
		p := (*[2]byte)(unsafe.Pointer(&s.to.Port))
		binary.BigEndian.PutUint16(p[:], s.dst.Port())
		s.to.Addr = s.dst.Addr().As4()
	}

	const drain = 500 * time.Millisecond // in-flight packets
	cpu0, _ := cpuTicks(pid)
	gen0, _ := cpuTicks(os.Getpid())
	box0 := boxBusyTicks()
	g.start = time.Now()
	g.startWall = g.start.UnixNano()
	g.run(o.dur, drain, o.genCPU)
	wall := time.Since(g.start) // send window + drain
	cpu1, _ := cpuTicks(pid)
	gen1, _ := cpuTicks(os.Getpid())
	box1 := boxBusyTicks()
	rp.closeCalls()

	var sent, recv, decErr uint64
	h, kh := &g.hist, &g.khist
	for _, s := range g.streams {
		sent += s.sent
		recv += s.recv
		decErr += s.decErr
	}
	loss := 0.0
	if sent > 0 && recv < sent {
		loss = 100 * float64(sent-recv) / float64(sent)
	}
	hz := 100.0 // USER_HZ on Linux
	cpuS := float64(cpu1-cpu0) / hz
	verdict := "PASS"
	target := float64(2*calls*o.pps) * o.dur.Seconds()
	if loss > 0 || float64(sent) < 0.98*target || decErr > 0 || g.late > 0 {
		verdict = "FAIL"
	}
	sendWall := wall - drain
	batch := o.batch // Palisade's media.batch_interval (rtpengine: -1)
	if batch < 0 {
		batch = time.Duration(config.Default().Media.BatchInterval)
	}
	if o.relay == "rtpengine" {
		batch = -time.Microsecond
	}
	fmt.Fprintf(out, "RESULT bench-media relay=%s batch_interval_us=%d realtime_prio=%d pinned=%d loopback_floor_us=%.2f calls=%d streams=%d pps_per_stream=%d pkt_bytes=%d duration_s=%.1f setup_s=%.2f "+
		"sent=%d target=%.0f recv=%d loss_pct=%.4f agg_pps=%.0f lat_avg_us=%.0f lat_p50_us=%.0f lat_p99_us=%.0f lat_max_us=%.0f lat_kernel_p50_us=%.0f lat_kernel_p99_us=%.0f gen_send_lag_p99_us=%.0f "+
		"relay_cpu_s=%.2f relay_cpu_pct=%.1f relay_cpu_us_per_pkt=%.2f mem_per_call_kib=%.1f rss_per_call_kib=%.1f "+
		"srtp_sample_decrypt_errors=%d stray=%d gen_cpu_pct=%.1f gen_poll_us=%d sender_late_pkts=%d other_cpu_pct=%.0f verdict=%s\n",
		rp.name(), batch.Microseconds(), o.realtime, b2i(o.pinned), floor, calls, 2*calls, o.pps, o.size, sendWall.Seconds(), setup.Seconds(), sent, target, recv, loss,
		float64(sent)/sendWall.Seconds(), h.sum/float64(max(h.n, 1)), h.pct(0.5), h.pct(0.99), h.maxUs, kh.pct(0.5), kh.pct(0.99), g.lag.pct(0.99),
		cpuS, 100*cpuS/wall.Seconds(), 1e6*cpuS/float64(max(recv, 1)),
		float64(int64(heap1)-int64(heap0))/float64(calls), float64(int64(rss1)-int64(rss0))/float64(calls),
		decErr, g.stray, 100*float64(gen1-gen0)/hz/wall.Seconds(), o.poll.Microseconds(), g.late,
		100*(float64(box1-box0)-float64(cpu1-cpu0)-float64(gen1-gen0))/hz/wall.Seconds(), verdict)
	return nil
}

// hist is a latency histogram in 10 µs buckets up to 100 ms.
type hist struct {
	b     [10001]uint64
	sum   float64
	n     uint64
	maxUs float64
}

func (h *hist) add(us float64) {
	if us < 0 || us > 1e9 {
		return // clock wrap
	}
	i := min(int(us/10), len(h.b)-1)
	h.b[i]++
	h.sum += us
	h.n++
	h.maxUs = max(h.maxUs, us)
}

func (h *hist) merge(o *hist) {
	for i := range h.b {
		h.b[i] += o.b[i]
	}
	h.sum += o.sum
	h.n += o.n
	h.maxUs = max(h.maxUs, o.maxUs)
}

func (h *hist) pct(p float64) float64 {
	want := uint64(p * float64(h.n))
	var c uint64
	for i, v := range h.b {
		c += v
		if c > want {
			return float64(i+1) * 10
		}
	}
	return h.maxUs
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
