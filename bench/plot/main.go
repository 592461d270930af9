// Command plot turns the RESULT lines of bench/sip/run.sh and bench/media
// into a summary table and an SVG picture (no external tool): offered
// calls/s against CPU and failed calls for each system, and CPU per relayed
// packet for the media runs.
//
//	go run ./bench/plot -sip /tmp/bench-runs/bench-sip-….log -svg docs/bench-sip.svg
//	go run ./bench/plot -media /tmp/bench-runs/bench-media-….log -svg docs/bench-media.svg
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

func main() {
	sipLog := flag.String("sip", "", "file with bench/sip RESULT lines")
	mediaLog := flag.String("media", "", "file with bench/media RESULT lines")
	svg := flag.String("svg", "", "write the picture here")
	flag.Parse()
	var sip, med []result
	var err error
	if *sipLog != "" {
		if sip, err = readResults(*sipLog, "RESULT sut="); err != nil {
			fail(err)
		}
		sipTable(os.Stdout, sip)
	}
	if *mediaLog != "" {
		if med, err = readResults(*mediaLog, "RESULT bench-media"); err != nil {
			fail(err)
		}
		mediaTable(os.Stdout, med)
	}
	if *svg == "" {
		return
	}
	f, err := os.Create(*svg)
	if err != nil {
		fail(err)
	}
	if *sipLog != "" {
		writeSIPSVG(f, sip)
	} else {
		writeMediaSVG(f, med)
	}
	if err := f.Close(); err != nil {
		fail(err)
	}
	fmt.Println("picture:", *svg)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "plot:", err)
	os.Exit(1)
}

// result is one RESULT line as key=value pairs; the bracketed description
// of the system under test is kept under "desc".
type result map[string]string

func (r result) num(k string) float64 {
	v, err := strconv.ParseFloat(r[k], 64)
	if err != nil {
		return -1
	}
	return v
}

func parseResult(line string) result {
	r := result{}
	if i := strings.IndexByte(line, '['); i >= 0 {
		if j := strings.IndexByte(line[i:], ']'); j >= 0 {
			r["desc"] = line[i+1 : i+j]
			line = line[:i] + line[i+j+1:]
		}
	}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			r[k] = v
		}
	}
	return r
}

func readResults(path, prefix string) ([]result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			out = append(out, parseResult(sc.Text()))
		}
	}
	return out, sc.Err()
}

// Names of the systems in the order they are shown.
var sipSystems = []struct{ key, label string }{
	{"palisade-run", "palisade run (setup defaults: media anchored, records, traces)"},
	{"kamailio-rtpengine", "Kamailio 4 workers + rtpengine (media anchored)"},
	{"palisade", "B2BUA alone, for reference (no media, records, traces)"},
}

// series returns the system's runs over UDP (TLS runs apart) by offered rate.
func series(rs []result, sut string) []result {
	var out []result
	for _, r := range rs {
		if r["sut"] == sut && !strings.Contains(r["desc"], "TLS") {
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].num("target_cps") < out[j].num("target_cps") })
	return out
}

// cpuPerCall is CPU µs per completed call.
func cpuPerCall(r result) float64 {
	a := r.num("achieved_cps")
	if a <= 0 {
		return 0
	}
	return r.num("sut_cpu_pct") / 100 * 1e6 / a
}

// knee is the highest offered rate that passed (< 0.1 % failed, ≥ 97 % done)
// with every lower rate passing too.
func knee(rs []result) float64 {
	best := 0.0
	for _, r := range rs {
		if r["verdict"] != "PASS" {
			break
		}
		best = r.num("target_cps")
	}
	return best
}

func sipTable(w io.Writer, rs []result) {
	fmt.Fprintf(w, "%-20s %8s %9s %8s %8s %8s %9s  %s\n", "system", "offered", "achieved", "failed%", "retrans", "CPU%", "µs/call", "CPU% by process")
	for _, s := range sipSystems {
		for _, r := range series(rs, s.key) {
			fmt.Fprintf(w, "%-20s %8s %9s %8s %8s %8s %9.0f  %s\n", s.key, r["target_cps"], r["achieved_cps"], r["fail_pct"], r["retrans"], r["sut_cpu_pct"], cpuPerCall(r), r["sut_cpu_by_proc"])
		}
	}
	for _, r := range rs {
		if strings.Contains(r["desc"], "TLS") {
			fmt.Fprintf(w, "%-20s %8s %9s %8s %8s %8s %9.0f  UDP in, TLS out to Kamailio (peer %s%%)\n", r["sut"]+"/TLS", r["target_cps"], r["achieved_cps"], r["fail_pct"], r["retrans"], r["sut_cpu_pct"], cpuPerCall(r), r["peer_cpu_pct"])
		}
	}
	p, k := series(rs, "palisade-run"), series(rs, "kamailio-rtpengine")
	if len(p) == 0 || len(k) == 0 {
		return
	}
	kp, kk := knee(p), knee(k)
	fmt.Fprintf(w, "highest rate with no failed call (< 0.1 %%, every lower rate too): palisade run %.0f, Kamailio + rtpengine %.0f", kp, kk)
	if kk > 0 {
		fmt.Fprintf(w, " (ratio %.2f, target >= 1.2)", kp/kk)
	}
	fmt.Fprintln(w)
	for _, a := range p {
		for _, b := range k {
			if a["target_cps"] == b["target_cps"] && a["verdict"] == "PASS" && b["verdict"] == "PASS" {
				fmt.Fprintf(w, "CPU per call at %s calls/s: palisade run %.0f µs, Kamailio + rtpengine %.0f µs (ratio %.2f, target <= 1.0)\n",
					a["target_cps"], cpuPerCall(a), cpuPerCall(b), cpuPerCall(a)/cpuPerCall(b))
			}
		}
	}
}

// Media: one RESULT bench-media line per relay and number of calls.
func mediaTable(w io.Writer, rs []result) {
	fmt.Fprintf(w, "%-10s %6s %7s %9s %10s %10s %10s %10s %8s  %s\n", "relay", "calls", "pinned", "loss%", "µs/pkt", "floor µs", "p50 µs", "p99 µs", "CPU%", "verdict")
	for _, r := range rs {
		fmt.Fprintf(w, "%-10s %6s %7s %9s %10s %10s %10s %10s %8s  %s\n", r["relay"], r["calls"], r["pinned"], r["loss_pct"], r["relay_cpu_us_per_pkt"], r["loopback_floor_us"], r["lat_p50_us"], r["lat_p99_us"], r["relay_cpu_pct"], r["verdict"])
	}
	for _, p := range rs {
		if p["relay"] != "palisade" {
			continue
		}
		for _, q := range rs {
			if q["relay"] == "rtpengine" && q["calls"] == p["calls"] && q["pinned"] == p["pinned"] {
				fmt.Fprintf(w, "%s calls (pinned=%s): palisade %.2f µs/pkt = %.2f x rtpengine's %.2f (target <= 0.7), %.2f x the floor %.2f (target <= 1.5)\n",
					p["calls"], p["pinned"], p.num("relay_cpu_us_per_pkt"), p.num("relay_cpu_us_per_pkt")/q.num("relay_cpu_us_per_pkt"),
					q.num("relay_cpu_us_per_pkt"), p.num("relay_cpu_us_per_pkt")/p.num("loopback_floor_us"), p.num("loopback_floor_us"))
			}
		}
	}
}
