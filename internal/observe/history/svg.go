package history

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"strconv"
	"time"
)

// Merge sums every k consecutive samples into one (a day of minutes into
// 10-minute points for its graph). The merged sample has the first one's
// minute and the highest peak.
func Merge(samples []Sample, k int) []Sample {
	if k <= 1 {
		return samples
	}
	var out []Sample
	for i := 0; i < len(samples); i += k {
		m := samples[i]
		for _, s := range samples[i+1 : min(i+k, len(samples))] {
			m.Attempts += s.Attempts
			m.Ended += s.Ended
			m.Answered += s.Answered
			m.Failed += s.Failed
			m.TalkSecs += s.TalkSecs
			m.Packets += s.Packets
			m.Lost += s.Lost
			m.JitterSum += s.JitterSum
			m.JitterN += s.JitterN
			m.PeakCalls = max(m.PeakCalls, s.PeakCalls)
		}
		out = append(out, m)
	}
	return out
}

// Series is one line of a chart.
type Series struct {
	Name   string
	Color  string // an SVG colour
	Values []float64
}

// Chart geometry (SVG user units).
const (
	chartW, chartH = 640, 200
	padL, padR     = 48, 12
	padT, padB     = 24, 28
)

// Chart draws series over times (one value per time, all series the same
// length) as a self-contained SVG line chart with a legend, the highest
// value on the y axis and the times of both ends and the middle. Colours are
// attributes, not styles, so the page's Content-Security-Policy allows it.
func Chart(title, unit string, times []time.Time, series ...Series) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		chartW, chartH, chartW, chartH, html.EscapeString(title))
	fmt.Fprintf(&b, `<title>%s</title><rect width="%d" height="%d" fill="#ffffff"/>`, html.EscapeString(title), chartW, chartH)
	top := 0.0
	for _, s := range series {
		for _, v := range s.Values {
			top = math.Max(top, v)
		}
	}
	top = niceCeil(top)
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	x0, y0 := float64(padL), float64(chartH-padB)
	// Axes and grid.
	for i := 0; i <= 4; i++ {
		y := y0 - plotH*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e3e6ea" stroke-width="1"/>`, padL, y, chartW-padR, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="10" text-anchor="end" fill="#555" font-family="sans-serif">%s</text>`,
			padL-4, y+3, formatValue(top*float64(i)/4))
	}
	fmt.Fprintf(&b, `<text x="%d" y="14" font-size="11" fill="#333" font-family="sans-serif"><tspan font-weight="bold">%s</tspan> · %s</text>`, padL, html.EscapeString(title), html.EscapeString(unit))
	n := len(times)
	xAt := func(i int) float64 {
		if n <= 1 {
			return x0
		}
		return x0 + plotW*float64(i)/float64(n-1)
	}
	if n > 0 {
		for _, i := range []int{0, n / 2, n - 1} {
			anchor := "middle"
			switch i {
			case 0:
				anchor = "start"
			case n - 1:
				anchor = "end"
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="%s" fill="#555" font-family="sans-serif">%s</text>`,
				xAt(i), chartH-10, anchor, times[i].UTC().Format("15:04"))
		}
	}
	// Lines.
	for si, s := range series {
		var pts bytes.Buffer
		for i, v := range s.Values {
			y := y0
			if top > 0 {
				y = y0 - plotH*v/top
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", xAt(i), y)
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, html.EscapeString(s.Color), bytes.TrimSpace(pts.Bytes()))
		lx := chartW - padR - 130*(len(series)-si)
		fmt.Fprintf(&b, `<rect x="%d" y="6" width="10" height="10" fill="%s"/><text x="%d" y="15" font-size="11" fill="#333" font-family="sans-serif">%s</text>`,
			lx, html.EscapeString(s.Color), lx+14, html.EscapeString(s.Name))
	}
	b.WriteString(`</svg>`)
	return b.Bytes()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func formatValue(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
