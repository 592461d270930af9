package main

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkLoopbackFloor is what this machine's kernel charges for one UDP
// datagram sent and received on loopback (floor.go). "sendto" gives the
// address with every datagram (the relay before it latches); "connected"
// sends on a socket connect(2)ed to the receiver (the relay after latching).
func BenchmarkLoopbackFloor(b *testing.B) {
	for _, connected := range []bool{false, true} {
		name := "sendto"
		if connected {
			name = "connected"
		}
		b.Run(name, func(b *testing.B) {
			s, r, to, err := floorSockets(connected)
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Close(s)
			defer unix.Close(r)
			b.ResetTimer()
			if err := floorLoop(s, r, to, connected, b.N); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// The floor the benchmark prints is a CPU time per datagram: the kernel
// charges something for 200,000 of them (no upper bound: no timing test).
func TestLoopbackFloorMeasures(t *testing.T) {
	us, err := loopbackFloorUs(-1)
	if err != nil {
		t.Fatal(err)
	}
	if !(us > 0) {
		t.Fatalf("floor %.3f µs per datagram", us)
	}
}

func TestBencodeRoundTrip(t *testing.T) {
	var b bytes.Buffer
	benc(&b, map[string]any{"command": "offer", "replace": []string{"origin"}, "n": 3})
	if got := b.String(); got != "d7:command5:offer1:ni3e7:replacel6:originee" {
		t.Fatalf("encoded %q", got)
	}
	v, rest, err := bdec([]byte("d6:result2:ok3:sdp3:v=0e"))
	m, _ := v.(map[string]any)
	if err != nil || len(rest) != 0 || m["result"] != "ok" || m["sdp"] != "v=0" {
		t.Fatalf("decoded %v %q %v", v, rest, err)
	}
}
