package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// A small SVG line/bar chart writer: enough for the benchmark pictures,
// no dependency.

var colors = []string{"#1f6fb4", "#d9541e", "#7f7f7f", "#2ca02c"}

type line struct {
	label string
	xs    []float64
	ys    []float64
	dash  bool
}

type panel struct {
	title, xLabel, yLabel string
	x, y, w, h            float64 // placement in the picture
	yMax                  float64 // fixed top of the y axis (0: from the data)
	lines                 []line
}

func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func (p panel) write(b *strings.Builder) {
	xMax, yMax := 0.0, 0.0
	for _, l := range p.lines {
		for i := range l.xs {
			xMax, yMax = math.Max(xMax, l.xs[i]), math.Max(yMax, l.ys[i])
		}
	}
	xMax, yMax = niceMax(xMax), niceMax(yMax*1.05)
	if p.yMax > 0 {
		yMax = p.yMax
	}
	px := func(v float64) float64 { return p.x + v/xMax*p.w }
	py := func(v float64) float64 { return p.y + p.h - v/yMax*p.h }
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-size="14" font-weight="bold">%s</text>`+"\n", p.x, p.y-12, html.EscapeString(p.title))
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#444"/>`+"\n", p.x, p.y, p.w, p.h)
	for i := 0; i <= 5; i++ {
		xv, yv := xMax*float64(i)/5, yMax*float64(i)/5
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", p.x, py(yv), p.x+p.w, py(yv))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle">%s</text>`+"\n", px(xv), p.y+p.h+15, fmtNum(xv))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="end">%s</text>`+"\n", p.x-4, py(yv)+4, fmtNum(yv))
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="12" text-anchor="middle">%s</text>`+"\n", p.x+p.w/2, p.y+p.h+32, html.EscapeString(p.xLabel))
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="12" text-anchor="middle" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
		p.x-42, p.y+p.h/2, p.x-42, p.y+p.h/2, html.EscapeString(p.yLabel))
	for i, l := range p.lines {
		c := colors[i%len(colors)]
		var pts []string
		for j := range l.xs {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(l.xs[j]), py(l.ys[j])))
		}
		dash := ""
		if l.dash {
			dash = ` stroke-dasharray="5,4"`
		}
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), c, dash)
		for j := range l.xs {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %s, %s</title></circle>`+"\n",
				px(l.xs[j]), py(l.ys[j]), c, html.EscapeString(l.label), fmtNum(l.xs[j]), fmtNum(l.ys[j]))
		}
	}
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

func legend(b *strings.Builder, x, y float64, labels []string, dashed map[int]bool) {
	for i, l := range labels {
		c := colors[i%len(colors)]
		dash := ""
		if dashed[i] {
			dash = ` stroke-dasharray="5,4"`
		}
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2"%s/>`+"\n", x, y+float64(i)*18-4, x+24, y+float64(i)*18-4, c, dash)
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-size="12">%s</text>`+"\n", x+30, y+float64(i)*18, html.EscapeString(l))
	}
}

func svgDoc(w io.Writer, width, height float64, title, note string, body string) {
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="20" y="26" font-size="16" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	fmt.Fprintf(w, `<text x="20" y="44" font-size="11" fill="#555">%s</text>`+"\n", html.EscapeString(note))
	io.WriteString(w, body)
	io.WriteString(w, "</svg>\n")
}

const sharedNote = "One 2-vCPU VM; the load generators share its two cores with the system under test (see the RESULTS.md of each benchmark for the state of the machine)."

func writeSIPSVG(w io.Writer, rs []result) {
	var b strings.Builder
	cpu := panel{title: "CPU of the system under test", xLabel: "offered calls/s", yLabel: "CPU, % of one core (all processes)", x: 80, y: 90, w: 420, h: 280}
	bad := panel{title: "Failed calls", xLabel: "offered calls/s", yLabel: "failed or unfinished, %", x: 600, y: 90, w: 420, h: 280, yMax: 100}
	var labels []string
	dashed := map[int]bool{}
	for _, s := range sipSystems {
		ser := series(rs, s.key)
		if len(ser) == 0 {
			continue
		}
		l := line{label: s.label, dash: s.key == "palisade"}
		f := line{label: s.label, dash: l.dash}
		for _, r := range ser {
			l.xs, l.ys = append(l.xs, r.num("target_cps")), append(l.ys, r.num("sut_cpu_pct"))
			f.xs, f.ys = append(f.xs, r.num("target_cps")), append(f.ys, r.num("fail_pct"))
		}
		dashed[len(labels)] = l.dash
		labels = append(labels, s.label)
		cpu.lines = append(cpu.lines, l)
		bad.lines = append(bad.lines, f)
	}
	cpu.write(&b)
	bad.write(&b)
	legend(&b, 80, 430, labels, dashed)
	svgDoc(w, 1060, 500, "SIP, sipp UAC → system → sipp UAS over UDP, loopback", sharedNote, b.String())
}

func writeMediaSVG(w io.Writer, rs []result) {
	var b strings.Builder
	cpu := panel{title: "CPU per relayed packet (RTP one side, SRTP SDES the other)", xLabel: "concurrent calls (2 streams each, 50 packets/s)", yLabel: "µs of CPU per relayed packet", x: 80, y: 90, w: 420, h: 280}
	lat := panel{title: "p99 latency (generator → relay → generator)", xLabel: "concurrent calls", yLabel: "p99, ms (100 = over the histogram's cap)", x: 600, y: 90, w: 420, h: 280}
	floor := line{label: "LoopbackFloor of the run (one receive + one send)", dash: true}
	by, byLat := map[string]*line{}, map[string]*line{}
	var order []string
	for _, r := range rs {
		k := r["relay"]
		if r["pinned"] == "1" {
			k += ", relay and generator pinned"
		}
		if by[k] == nil {
			by[k], byLat[k] = &line{label: k}, &line{label: k}
			order = append(order, k)
		}
		by[k].xs, by[k].ys = append(by[k].xs, r.num("calls")), append(by[k].ys, r.num("relay_cpu_us_per_pkt"))
		byLat[k].xs, byLat[k].ys = append(byLat[k].xs, r.num("calls")), append(byLat[k].ys, r.num("lat_p99_us")/1000)
		if r["relay"] == "palisade" && r.num("loopback_floor_us") > 0 {
			floor.xs, floor.ys = append(floor.xs, r.num("calls")), append(floor.ys, r.num("loopback_floor_us"))
		}
	}
	var labels []string
	dashed := map[int]bool{}
	for _, k := range order {
		cpu.lines = append(cpu.lines, *by[k])
		lat.lines = append(lat.lines, *byLat[k])
		labels = append(labels, k)
	}
	if len(floor.xs) > 0 {
		dashed[len(labels)] = true
		cpu.lines = append(cpu.lines, floor)
		labels = append(labels, floor.label)
	}
	cpu.write(&b)
	lat.write(&b)
	legend(&b, 80, 430, labels, dashed)
	svgDoc(w, 1060, 500, "Media relay: Palisade vs rtpengine (userspace), same generator, loopback", sharedNote, b.String())
}
