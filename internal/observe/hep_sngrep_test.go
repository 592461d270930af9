package observe_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe/hep"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// TestHEPToSngrep sends the HEP export of real calls (sipp through the
// unit; the outside leg over UDP, then over TLS) to Debian's sngrep
// listening for HEP, and compares the pcap sngrep wrote message for
// message with the unit's own trace: same addresses, ports, times and SIP
// text, the TLS leg in clear.
func TestHEPToSngrep(t *testing.T) {
	sipp := testkit.NeedBinary(t, "sipp", "sip-tester")
	sngrep := testkit.NeedBinary(t, "sngrep", "sngrep")
	for _, outside := range []string{"udp", "tls"} {
		t.Run("outside "+outside, func(t *testing.T) {
			port := testkit.FreePort(t, "udp", "127.0.0.1")
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			pcap := filepath.Join(t.TempDir(), "hep.pcap")
			var out testkit.SyncBuffer
			cmd := exec.Command(sngrep, "-N", "-q", "-L", "udp:"+addr, "-O", pcap)
			cmd.Stdout, cmd.Stderr = &out, &out
			p := testkit.Start(t, cmd, 5*time.Second)
			// sngrep listens once the port is taken.
			p.WaitReady(t, "sngrep", func() bool {
				c, err := net.ListenPacket("udp", addr)
				if err == nil {
					c.Close()
				}
				return err != nil
			}, 50*time.Millisecond, 600, out.String)

			exp := hep.New(nil)
			cfg := config.Default()
			cfg.HEP = config.HEP{Enabled: true, NodeID: 7, NodeName: "sbc-test", QueueSize: 10000,
				Collectors: []config.HEPCollector{{Address: addr, Transport: "udp"}}}
			if err := exp.Apply(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { exp.Close() })
			svc := callsThroughTheUnit(t, sipp, outside, exp)

			var want []string
			for _, m := range svc.Traces.Window(time.Time{}, time.Time{}) {
				src, dst := m.Remote, m.Local
				if m.Direction == "out" {
					src, dst = m.Local, m.Remote
				}
				want = append(want, record(src, dst, m.Time, m.Text))
			}
			slices.Sort(want)
			var got []string
			for i := 0; i < 600 && len(got) < len(want); i++ { // sngrep writes each packet at once
				time.Sleep(50 * time.Millisecond)
				got = readSngrepPCAP(t, pcap)
			}
			slices.Sort(got)
			if len(got) != len(want) {
				t.Fatalf("sngrep wrote %d messages, the trace has %d\nsngrep: %s", len(got), len(want), out.String())
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("message %d:\nsngrep: %s\n trace: %s", i, got[i], want[i])
				}
			}
			t.Logf("sngrep received all %d messages of both legs", len(got))
		})
	}
}

func record(src, dst netip.AddrPort, at time.Time, text string) string {
	return fmt.Sprintf("%s > %s at %d.%06d\n%s", src, dst, at.Unix(), at.Nanosecond()/1000, text)
}

// readSngrepPCAP reads the pcap sngrep writes for HEP input: Ethernet,
// IPv4, UDP, the SIP text, and the capture time from HEP as the record's.
func readSngrepPCAP(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 24 {
		return nil
	}
	le := binary.LittleEndian
	if le.Uint32(b) != 0xa1b2c3d4 || le.Uint32(b[20:]) != 1 {
		t.Fatalf("pcap header %x: not little-endian microsecond Ethernet", b[:24])
	}
	var out []string
	for r := b[24:]; len(r) >= 16; {
		sec, usec, n := le.Uint32(r), le.Uint32(r[4:]), int(le.Uint32(r[8:]))
		if len(r) < 16+n {
			break // being written
		}
		pkt := r[16 : 16+n]
		r = r[16+n:]
		if len(pkt) < 14+20+8 || binary.BigEndian.Uint16(pkt[12:]) != 0x0800 {
			t.Fatalf("not Ethernet/IPv4: %x", pkt)
		}
		ip := pkt[14:]
		ihl := int(ip[0]&0x0f) * 4
		src, _ := netip.AddrFromSlice(ip[12:16])
		dst, _ := netip.AddrFromSlice(ip[16:20])
		udp := ip[ihl:]
		at := time.Unix(int64(sec), int64(usec)*1000)
		out = append(out, record(netip.AddrPortFrom(src, binary.BigEndian.Uint16(udp)),
			netip.AddrPortFrom(dst, binary.BigEndian.Uint16(udp[2:])), at, string(udp[8:])))
	}
	return out
}
