// Command soak runs a bounded soak test of the palisade binary: sipp calls
// from a PBX peer through the unit to a trunk peer at a steady rate, with
// bad traffic mixed in (RFC 4475 torture messages, small INVITE floods),
// while memory, goroutines and file descriptors are sampled. It reports
// failed calls and the growth after warm-up. A few long-lived calls of Go
// user agents carry 20 ms RTP both ways for the whole soak through the
// media relay; their lost packets are reported too. `make soak` runs it.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

const (
	insideIP  = "127.0.0.91"
	outsideIP = "127.0.0.92"
	pbxIP     = "127.0.0.93" // sipp UAC
	trunkIP   = "127.0.0.94" // sipp UAS
	badIP     = "127.0.0.95" // torture messages
	floodIP   = "127.0.0.96" // floods
)

type sample struct {
	at         time.Duration
	rssKiB     int
	goroutines int
	fds        int
	calls      float64
}

func main() {
	dur := flag.Duration("duration", envDur("SOAK_DURATION", 30*time.Minute), "how long calls are offered")
	rate := flag.Int("rate", envInt("SOAK_RATE", 1000), "calls per second (half the measured bench-sip capacity)")
	hold := flag.Duration("hold", envDur("SOAK_HOLD", 2*time.Second), "how long each call stays up")
	bin := flag.String("bin", "bin/palisade", "palisade binary")
	every := flag.Duration("sample", 10*time.Second, "sampling period")
	mediaCalls := flag.Int("media-calls", envInt("SOAK_MEDIA_CALLS", 20), "long-lived calls carrying RTP both ways for the whole soak (0 = none)")
	flag.Parse()
	if err := run(*bin, *dur, *rate, *hold, *every, *mediaCalls); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(bin string, dur time.Duration, rate int, hold, every time.Duration, mediaCalls int) error {
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		return fmt.Errorf("install Debian package sip-tester (sipp)")
	}
	root, _ := os.Getwd()
	scen := filepath.Join(root, "bench", "sip", "harness", "scenarios")
	torture, _ := filepath.Glob(filepath.Join(root, "test", "robust", "testdata", "torture", "*", "*.sip"))
	work, err := os.MkdirTemp("", "palisade-soak")
	if err != nil {
		return err
	}
	fmt.Printf("soak: %v at %d calls/s, hold %v, %d media calls, work dir %s\n", dur, rate, hold, mediaCalls, work)

	in, out := freePort(insideIP), freePort(outsideIP)
	uacPort, uasPort := freePort(pbxIP), freePort(trunkIP)
	cfg := config.Default()
	cfg.Network.Interfaces = []config.Interface{{Name: "inside", Address: insideIP}, {Name: "outside", Address: outsideIP}}
	cfg.Network.DNSServers = []string{"127.0.0.1:9"}
	cfg.SIP.Listeners = []config.Listener{{Interface: "inside", Transport: "udp", Port: in}, {Interface: "outside", Transport: "udp", Port: out}}
	cfg.Peers = []config.Peer{
		{Name: "pbx", Kind: "pbx", Interface: "inside", Address: fmt.Sprintf("%s:%d", pbxIP, uacPort), Transport: "udp"},
		{Name: "itsp", Kind: "itsp", Interface: "outside", Address: fmt.Sprintf("%s:%d", trunkIP, uasPort), Transport: "udp"},
	}
	med := newMediaSoak()
	if mediaCalls > 0 {
		addMediaPeers(cfg, med.pbxPort, med.trunkPort)
	}
	cfg.Media.Policies = []config.MediaPolicy{}
	cfg.Media.DefaultPolicy.RTPProfile = "avp"
	cfg.Media.InactivityTimeout = 0 // sipp's scenario sends no RTP
	b, err := config.Encode(cfg)
	if err != nil {
		return err
	}
	initial := filepath.Join(work, "initial.json")
	if err := os.WriteFile(initial, b, 0o600); err != nil {
		return err
	}
	data := filepath.Join(work, "data")
	ulog, _ := os.Create(filepath.Join(work, "unit.log"))
	unit := exec.Command(bin, "run", "--data", data, "--admin-listen", insideIP+":0", "--initial-config", initial, "--log-level", "warn")
	unit.Stdout, unit.Stderr = ulog, ulog
	unit.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := unit.Start(); err != nil {
		return err
	}
	defer func() {
		unit.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { unit.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			unit.Process.Kill()
		}
	}()
	admin := ""
	for i := 0; i < 300 && admin == ""; i++ {
		if a, err := os.ReadFile(filepath.Join(data, "admin.addr")); err == nil {
			admin = strings.TrimSpace(string(a))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if admin == "" {
		return fmt.Errorf("unit did not start; log in %s", ulog.Name())
	}
	time.Sleep(500 * time.Millisecond)

	maxRun := dur + 90*time.Second
	common := []string{"-nostdin", "-bind_local", "-buff_size", "4194304", "-max_recv_loops", "10000", "-max_sched_loops", "10000", "-trace_stat", "-fd", "5"}
	// sipp runs in its own process group so that it is stopped whole;
	// a leftover UAS would hold the media ports the next one needs.
	uas := exec.Command(sipp, append([]string{"-sf", filepath.Join(scen, "uas.xml"),
		"-i", trunkIP, "-p", strconv.Itoa(uasPort), "-mi", trunkIP, "-mp", "36000", "-stf", filepath.Join(work, "uas.csv"),
		"-timeout", fmt.Sprintf("%ds", int(maxRun.Seconds()))}, common...)...)
	uas.Dir = work
	uas.Stdout, uas.Stderr = io.Discard, io.Discard
	uas.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := uas.Start(); err != nil {
		return err
	}
	defer func() { syscall.Kill(-uas.Process.Pid, syscall.SIGKILL); uas.Wait() }()
	time.Sleep(500 * time.Millisecond)
	// The media calls go up before sipp's load and stay up until it ends.
	mediaDone := false
	if err := med.start(mediaCalls, fmt.Sprintf("%s:%d", insideIP, in)); err != nil {
		med.finish()
		return fmt.Errorf("media calls: %w", err)
	}
	defer func() {
		if !mediaDone {
			med.finish()
		}
	}()
	calls := int(dur.Seconds()) * rate
	limit := rate * (int(hold.Seconds()) + 5)
	uacCSV := filepath.Join(work, "uac.csv")
	uac := exec.Command(sipp, append([]string{"-sf", filepath.Join(scen, "uac.xml"),
		fmt.Sprintf("%s:%d", insideIP, in), "-s", "soak", "-i", pbxIP, "-p", strconv.Itoa(uacPort), "-mi", pbxIP, "-mp", "26000",
		"-r", strconv.Itoa(rate), "-rp", "1000", "-m", strconv.Itoa(calls), "-l", strconv.Itoa(limit), "-d", strconv.Itoa(int(hold.Milliseconds())),
		"-recv_timeout", "10000", "-timeout", fmt.Sprintf("%ds", int((dur + 60*time.Second).Seconds())), "-stf", uacCSV, "-trace_err", "-error_file", filepath.Join(work, "uac_errors.log")}, common...)...)
	uac.Dir = work
	uac.Stdout, uac.Stderr = io.Discard, io.Discard
	uac.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := uac.Start(); err != nil {
		return err
	}
	defer syscall.Kill(-uac.Process.Pid, syscall.SIGKILL)
	uacDone := make(chan error, 1)
	go func() { uacDone <- uac.Wait() }()

	var samples []sample
	bad := badTraffic{torture: torture, dst: fmt.Sprintf("%s:%d", insideIP, in), outside: fmt.Sprintf("%s:%d", outsideIP, out)}
	tick := time.NewTicker(every)
	defer tick.Stop()
	fmt.Printf("%8s %9s %10s %5s %7s\n", "time", "rss_KiB", "goroutines", "fds", "calls")
loop:
	for {
		select {
		case <-uacDone:
			break loop
		case <-tick.C:
			bad.round()
			s := sample{at: time.Since(start).Round(time.Second), rssKiB: rss(unit.Process.Pid), fds: fds(unit.Process.Pid)}
			m := metrics(admin)
			s.goroutines = int(m["go_goroutines"])
			s.calls = m["palisade_calls_active"]
			samples = append(samples, s)
			fmt.Printf("%8v %9d %10d %5d %7.0f\n", s.at, s.rssKiB, s.goroutines, s.fds, s.calls)
			if unit.Process.Signal(syscall.Signal(0)) != nil {
				return fmt.Errorf("unit exited during the soak; log in %s", ulog.Name())
			}
		}
	}
	mediaDone = true
	mr := med.finish()
	ok, failed, created, retrans := uacStats(uacCSV)
	return report(samples, dur, rate, hold, ok, failed, created, retrans, calls, &bad, mr, work)
}

func report(samples []sample, dur time.Duration, rate int, hold time.Duration, ok, failed, created, retrans, calls int, bad *badTraffic, mr mediaResult, work string) error {
	fmt.Printf("\nSOAK duration=%v rate=%d/s hold=%v offered=%d created=%d successful=%d failed=%d unfinished=%d retransmissions=%d\n",
		dur, rate, hold, calls, created, ok, failed, calls-ok-failed, retrans)
	fmt.Printf("SOAK bad traffic: %d torture messages, %d flood INVITEs from one source\n", bad.tortureSent, bad.floodSent)
	mr.print()
	if len(samples) < 3 {
		fmt.Println("SOAK too few samples for a trend")
		return nil
	}
	// Warm-up: the first fifth of the run (at least one sample).
	w := max(1, len(samples)/5)
	warm, last := samples[w], samples[len(samples)-1]
	maxRSS, maxG := 0, 0
	for _, s := range samples[w:] {
		maxRSS, maxG = max(maxRSS, s.rssKiB), max(maxG, s.goroutines)
	}
	fmt.Printf("SOAK after warm-up (%v): RSS %d -> %d KiB (max %d), goroutines %d -> %d (max %d), fds %d -> %d\n",
		warm.at, warm.rssKiB, last.rssKiB, maxRSS, warm.goroutines, last.goroutines, maxG, warm.fds, last.fds)
	fmt.Printf("SOAK logs and sipp statistics in %s\n", work)
	return nil
}

// badTraffic sends the torture messages and a small INVITE flood each
// round (the flood source is blocked by the guard after 200 requests).
type badTraffic struct {
	torture                []string
	dst, outside           string
	tortureSent, floodSent int
	n                      int
}

func (b *badTraffic) round() {
	b.n++
	c, err := net.ListenPacket("udp", badIP+":0")
	if err == nil {
		ua, _ := net.ResolveUDPAddr("udp", b.dst)
		for _, f := range b.torture {
			m, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			m = bytes.ReplaceAll(bytes.ReplaceAll(m, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
			m = bytes.ReplaceAll(m, []byte("{{LEN}}"), []byte("0"))
			m = bytes.ReplaceAll(m, []byte("branch=z9hG4bK"), []byte(fmt.Sprintf("branch=z9hG4bKsoak%d-", b.n)))
			c.WriteTo(m, ua)
			b.tortureSent++
		}
		c.Close()
	}
	// A flood of 1,000 INVITEs to the outside from an unknown source.
	f, err := net.ListenPacket("udp", floodIP+":0")
	if err == nil {
		ua, _ := net.ResolveUDPAddr("udp", b.outside)
		for i := range 1000 {
			msg := fmt.Sprintf("INVITE sip:%d@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKfl%d-%d;rport\r\nFrom: <sip:x@%s>;tag=%d\r\nTo: <sip:%d@%s>\r\nCall-ID: fl-%d-%d\r\nCSeq: 1 INVITE\r\nContact: <sip:x@%s>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
				i, b.outside, f.LocalAddr(), b.n, i, floodIP, i, i, b.outside, b.n, i, f.LocalAddr())
			f.WriteTo([]byte(msg), ua)
			b.floodSent++
		}
		f.Close()
	}
}

func uacStats(path string) (ok, failed, created, retrans int) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.Comma = ';'
	r.FieldsPerRecord = -1
	rows, _ := r.ReadAll()
	if len(rows) < 2 {
		return
	}
	head, last := rows[0], rows[len(rows)-1]
	get := func(name string) int {
		for i, h := range head {
			if h == name && i < len(last) {
				n, _ := strconv.Atoi(last[i])
				return n
			}
		}
		return 0
	}
	return get("SuccessfulCall(C)"), get("FailedCall(C)"), get("TotalCallCreated"), get("Retransmissions(C)")
}

func metrics(admin string) map[string]float64 {
	out := map[string]float64{}
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	res, err := cl.Get("https://" + admin + "/metrics")
	if err != nil {
		return out
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		name := l
		if i := strings.IndexAny(l, "{ "); i >= 0 {
			name = l[:i]
		}
		if v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64); err == nil {
			out[name] += v
		}
	}
	return out
}

func rss(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func fds(pid int) int {
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(es)
}

func freePort(ip string) int {
	c, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		panic(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func envDur(k string, d time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(k)); err == nil {
		return v
	}
	return d
}

func envInt(k string, d int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return d
}
