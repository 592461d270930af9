package media_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// recorder keeps the calls the B2BUA makes, to read their statistics.
type recorder struct {
	*media.Relay
	mu    sync.Mutex
	calls []media.Call
}

func (r *recorder) NewCall(id string, a, b media.Leg) (media.Call, error) {
	c, err := r.Relay.NewCall(id, a, b)
	if err == nil {
		r.mu.Lock()
		r.calls = append(r.calls, c)
		r.mu.Unlock()
	}
	return c, err
}

// TestInteropSippBaresip: a PBX (sipp playing Debian's g711a.pcap, plain
// RTP) calls through the B2BUA and the relay to an outside UA (baresip,
// mandatory SDES SRTP). The relay must carry every packet of the pcap to
// baresip encrypted, and baresip's SRTP back to the PBX decrypted, with no
// authentication failure. tshark, when present, counts the packets on the
// wire independently.
func TestInteropSippBaresip(t *testing.T) {
	sipp := testkit.NeedBinary(t, "sipp", "sip-tester")
	baresip := testkit.NeedBinary(t, "baresip", "baresip-core")
	const pcap = "/usr/share/sip-tester/g711a.pcap"
	if _, err := os.Stat(pcap); err != nil {
		t.Skip("sip-tester's g711a.pcap missing")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()

	pbxPort, trunkPort := testkit.FreePort(t, "udp", "127.0.0.1"), testkit.FreePort(t, "udp", "127.0.0.3")
	cfg := config.Default()
	cfg.Network.Interfaces = []config.Interface{{Name: "inside", Address: "127.0.0.1"}, {Name: "outside", Address: "127.0.0.2"}}
	cfg.SIP.Listeners = []config.Listener{{Interface: "inside", Transport: "udp"}, {Interface: "outside", Transport: "udp"}}
	cfg.Peers = []config.Peer{
		{Name: "pbx", Kind: "pbx", Interface: "inside", Address: fmt.Sprintf("127.0.0.1:%d", pbxPort), Transport: "udp"},
		{Name: "itsp", Kind: "itsp", Interface: "outside", Address: fmt.Sprintf("127.0.0.3:%d", trunkPort), Transport: "udp"},
	}
	cfg.Network.DNSServers = []string{"127.0.0.1:9"}
	base := 46000 + (time.Now().Nanosecond()/1000%500)*8
	cfg.Media.PortMin, cfg.Media.PortMax = base, base+39
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	relay, err := media.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	rec := &recorder{Relay: relay}
	sip := b2bua.New(b2bua.Deps{Logger: log, Media: rec})
	if err := sip.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sip.Close() })

	// baresip: outside UA on 127.0.0.3 (SIP and media), auto answer, SRTP
	// mandatory, plays a 440 Hz tone from a file, records what it hears.
	bdir := filepath.Join(dir, "baresip")
	os.MkdirAll(bdir, 0o755)
	tone := filepath.Join(bdir, "tone.wav")
	writeTone(t, tone, 12*time.Second)
	os.WriteFile(filepath.Join(bdir, "config"), []byte(fmt.Sprintf(`sip_listen 127.0.0.3:%d
net_interface 127.0.0.3
module_path /usr/lib/baresip/modules
module g711.so
module srtp.so
module aufile.so
module sndfile.so
snd_path %s
module_app account.so
audio_player aufile,%s
audio_source aufile,%s
audio_alert aufile,/dev/null
`, trunkPort, bdir, filepath.Join(bdir, "heard.wav"), tone)), 0o644)
	os.WriteFile(filepath.Join(bdir, "accounts"), []byte("<sip:4687@127.0.0.3>;regint=0;mediaenc=srtp-mand;answermode=auto;audio_codecs=PCMA\n"), 0o644)
	var bout testkit.SyncBuffer
	bs := exec.CommandContext(ctx, baresip, "-f", bdir)
	bs.Stdout, bs.Stderr = &bout, &bout
	bsProc := testkit.Start(t, bs, 0)
	defer bsProc.Stop(0)
	for i := 0; i < 100 && !strings.Contains(bout.String(), "baresip is ready"); i++ {
		time.Sleep(50 * time.Millisecond)
	}

	var capture *exec.Cmd
	capFile := filepath.Join(dir, "media.pcap")
	if tshark, err := exec.LookPath("tshark"); err == nil {
		capture = exec.CommandContext(ctx, tshark, "-i", "lo", "-w", capFile, "-f",
			fmt.Sprintf("udp portrange %d-%d", cfg.Media.PortMin, cfg.Media.PortMax))
		var cerr testkit.SyncBuffer
		capture.Stderr = &cerr
		if err := capture.Start(); err != nil {
			capture = nil
		} else {
			for i := 0; i < 100 && !strings.Contains(cerr.String(), "Capturing"); i++ {
				time.Sleep(50 * time.Millisecond)
			}
		}
	}

	inside := sip.ListenAddr("inside", "udp")
	scenario, _ := filepath.Abs("testdata/uac_pcap.xml")
	uac := exec.CommandContext(ctx, sipp, "-sf", scenario, "-i", "127.0.0.1", "-p", strconv.Itoa(pbxPort),
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(testkit.FreePort(t, "udp", "127.0.0.1")&^1),
		"-s", "4687", "-m", "1", "-d", "8000", "-timeout", "60s", "-nostdin", inside.String())
	uac.Dir = dir
	if out, err := uac.CombinedOutput(); err != nil {
		t.Fatalf("sipp: %v\n%s\nbaresip:\n%s", err, testkit.LastLines(string(out), 30), testkit.LastLines(bout.String(), 30))
	}
	if capture != nil {
		time.Sleep(300 * time.Millisecond)
		capture.Process.Signal(os.Interrupt)
		capture.Wait()
	}

	rec.mu.Lock()
	calls := rec.calls
	rec.mu.Unlock()
	if len(calls) != 1 {
		t.Fatalf("%d media calls, want 1\nbaresip:\n%s", len(calls), testkit.LastLines(bout.String(), 30))
	}
	st := calls[0].Stats()
	a, b := st.Legs[media.SideA], st.Legs[media.SideB]
	t.Logf("inside: %+v", a)
	t.Logf("outside: %+v", b)
	const pcapPackets = 236
	if a.PacketsIn != pcapPackets || b.PacketsOut != pcapPackets {
		t.Errorf("PBX sent %d packets, %d reached baresip; want %d both", a.PacketsIn, b.PacketsOut, pcapPackets)
	}
	if !b.SRTP || a.SRTP || b.AuthFailures != 0 {
		t.Errorf("outside SRTP=%v (%s), inside SRTP=%v, auth failures %d", b.SRTP, b.Suite, a.SRTP, b.AuthFailures)
	}
	// baresip starts sending with its 200, a moment before the relay has
	// its answer: those first packets are dropped (not_ready).
	if b.PacketsIn < 100 || a.PacketsOut+5 < b.PacketsIn {
		t.Errorf("baresip sent %d SRTP packets, %d reached the PBX decrypted", b.PacketsIn, a.PacketsOut)
	}
	if capture != nil {
		checkWire(t, capFile, a, b)
	}
	// baresip decrypted what the relay encrypted: its recording holds the
	// PBX's audio, not silence.
	bs.Process.Signal(os.Interrupt)
	<-bsProc.Done()
	// sndfile writes dump-<call>-dec.wav with what it decoded.
	var heard []byte
	if m, _ := filepath.Glob(filepath.Join(bdir, "dump-*-dec.wav")); len(m) > 0 {
		heard, _ = os.ReadFile(m[0])
	}
	loud := 0
	for i := 44; i+1 < len(heard); i += 2 {
		if v := int16(binary.LittleEndian.Uint16(heard[i:])); v > 1000 || v < -1000 {
			loud++
		}
	}
	t.Logf("baresip recorded %d bytes, %d loud samples", len(heard), loud)
	if loud < 8000 {
		t.Errorf("baresip heard %d loud samples (of %d bytes): it could not decrypt the relay's SRTP", loud, len(heard))
	}
}

// checkWire counts with tshark what went to and from the relay's ports and
// checks that no outside packet carries the PBX's plain payload.
func checkWire(t *testing.T, file string, a, b media.LegStats) {
	t.Helper()
	out, err := exec.Command("tshark", "-r", file, "-T", "fields", "-e", "udp.srcport", "-e", "udp.dstport", "-e", "data.data",
		"-d", "udp.port==1-65535,data").Output()
	if err != nil {
		t.Logf("tshark: %v", err)
		return
	}
	count := map[string]int{}
	var insidePayloads, outsidePayloads []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, "\t")
		if len(f) < 3 {
			continue
		}
		switch {
		case f[1] == strconv.Itoa(int(a.Local.Port())):
			count["pbx->relay"]++
			if len(f[2]) > 24 {
				insidePayloads = append(insidePayloads, f[2][24:])
			}
		case f[0] == strconv.Itoa(int(b.Local.Port())):
			count["relay->baresip"]++
			if len(f[2]) > 24 {
				outsidePayloads = append(outsidePayloads, f[2][24:])
			}
		case f[1] == strconv.Itoa(int(b.Local.Port())):
			count["baresip->relay"]++
		case f[0] == strconv.Itoa(int(a.Local.Port())):
			count["relay->pbx"]++
		}
	}
	t.Logf("on the wire: %v", count)
	// Inside to outside must match exactly; the other way the first packets
	// may arrive before the answer (see above).
	if count["pbx->relay"] != count["relay->baresip"] || count["relay->pbx"]+5 < count["baresip->relay"] || count["pbx->relay"] == 0 {
		t.Errorf("packet counts on the wire differ: %v", count)
	}
	plain := map[string]bool{}
	for _, p := range insidePayloads {
		plain[p[:min(len(p), 320)]] = true
	}
	for _, p := range outsidePayloads {
		if plain[p[:min(len(p), 320)]] {
			t.Fatal("a PBX payload went out to the outside unencrypted")
		}
	}
}

// writeTone writes an 8 kHz mono 16-bit WAV file with a 440 Hz tone.
func writeTone(t *testing.T, path string, d time.Duration) {
	t.Helper()
	n := int(d.Seconds() * 8000)
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(36 + 2*n))
	b.WriteString("WAVEfmt ")
	le(uint32(16))
	le(uint16(1))
	le(uint16(1))
	le(uint32(8000))
	le(uint32(16000))
	le(uint16(2))
	le(uint16(16))
	b.WriteString("data")
	le(uint32(2 * n))
	for i := range n {
		le(int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000)))
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
