package main

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

const sipLines = `RESULT sut=palisade-run [palisade-run setup-defaults inside=127.0.0.61] target_cps=1000 calls=20000 fail_pct=0.000 achieved_cps=998.0 retrans=0 sut_cpu_pct=70.0 sut_cpu_by_proc=palisadex1:70.0 verdict=PASS
RESULT sut=palisade-run [x] target_cps=2000 fail_pct=20.000 achieved_cps=1500.0 sut_cpu_pct=120.0 verdict=FAIL
RESULT sut=kamailio-rtpengine [kamailio-5.6.3 + rtpengine] target_cps=1000 fail_pct=0.000 achieved_cps=1000.0 sut_cpu_pct=50.0 verdict=PASS
RESULT sut=kamailio-rtpengine [y] target_cps=2000 fail_pct=0.050 achieved_cps=2000.0 sut_cpu_pct=90.0 verdict=PASS
RESULT sut=palisade [palisade-sip out=TLS->kamailio] target_cps=1500 fail_pct=0 sut_cpu_pct=60 verdict=PASS
`

func TestParseResultKeepsDescriptionApart(t *testing.T) {
	r := parseResult("RESULT sut=kamailio-rtpengine [kamailio children=4 x=y] target_cps=2500 verdict=PASS")
	if r["sut"] != "kamailio-rtpengine" || r["desc"] != "kamailio children=4 x=y" || r.num("target_cps") != 2500 || r["x"] != "" {
		t.Fatalf("parsed %v", r)
	}
}

func TestSIPSummaryAndPicture(t *testing.T) {
	var rs []result
	for _, l := range strings.Split(strings.TrimSpace(sipLines), "\n") {
		rs = append(rs, parseResult(l))
	}
	if got := knee(series(rs, "palisade-run")); got != 1000 {
		t.Errorf("knee of palisade-run = %v, want 1000", got)
	}
	if got := len(series(rs, "palisade")); got != 0 {
		t.Errorf("TLS run counted as UDP: %d", got)
	}
	var tab strings.Builder
	sipTable(&tab, rs)
	for _, want := range []string{"palisade run 1000, Kamailio + rtpengine 2000 (ratio 0.50", "CPU per call at 1000 calls/s: palisade run 701 µs, Kamailio + rtpengine 500 µs (ratio 1.40"} {
		if !strings.Contains(tab.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, tab.String())
		}
	}
	var svg strings.Builder
	writeSIPSVG(&svg, rs)
	wellFormed(t, svg.String())
	if n := strings.Count(svg.String(), "<polyline"); n != 4 {
		t.Errorf("%d lines drawn, want 4 (CPU and failures of two systems)", n)
	}
}

func TestMediaPicture(t *testing.T) {
	rs := []result{
		parseResult("RESULT bench-media relay=palisade calls=100 pinned=0 relay_cpu_us_per_pkt=9.5 loopback_floor_us=4.6"),
		parseResult("RESULT bench-media relay=rtpengine calls=100 pinned=0 relay_cpu_us_per_pkt=12.0"),
	}
	var tab, svg strings.Builder
	mediaTable(&tab, rs)
	if !strings.Contains(tab.String(), "0.79 x rtpengine's 12.00") {
		t.Errorf("media summary:\n%s", tab.String())
	}
	writeMediaSVG(&svg, rs)
	wellFormed(t, svg.String())
}

func wellFormed(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		if _, err := d.Token(); err == io.EOF {
			return
		} else if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
	}
}
