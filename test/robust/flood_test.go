package robust_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

// metric reads one sample from the unit's /metrics (admin HTTPS); -1 when
// it cannot be read.
func (u *unit) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	res, err := cl.Get("https://" + u.admin + "/metrics")
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return -1
	}
	sum := 0.0
	found := false
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, name) || (len(l) > len(name) && l[len(name)] != '{' && l[len(name)] != ' ') {
			continue
		}
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(l, fmt.Sprintf("%s=%q", labels[i], labels[i+1])) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v); err == nil {
			sum += v
			found = true
		}
	}
	if !found {
		return 0
	}
	return sum
}

// TestFloodDuringCall: 20,000 INVITEs from one source over UDP while a call
// is up. The source is blocked after its first couple of hundred requests
// (only those are answered), the call ends normally, the unit keeps
// answering others, a new call from the PBX peer works while the flooder
// is still blocked, and memory stays bounded.
func TestFloodDuringCall(t *testing.T) {
	const floods = 20000
	u := startUnit(t, nil)
	c := startCall(t, u)
	rssBefore := u.rssKiB(t)

	fl := siptest.ListenRawUDP(t, floodIP+":0")
	dst, _ := net.ResolveUDPAddr("udp", u.insideUDP)
	answered := make(chan int)
	go func() {
		// Count the flood INVITEs answered at all (the unit resends
		// finals until an ACK that never comes).
		ids := map[string]bool{}
		for {
			m, _, err := fl.Recv(3 * time.Second)
			if err != nil {
				answered <- len(ids)
				return
			}
			if m.CallID() != nil {
				ids[m.CallID().Value()] = true
			}
		}
	}()
	start := time.Now()
	for i := range floods {
		msg := request("INVITE", "sip:flood"+fmt.Sprint(i)+"@"+u.insideUDP, fl.Local, fmt.Sprintf("flood-%d", i), siptest.NewTag(), "", 1, "", sdp(floodIP, 40000))
		if _, err := fl.Conn.WriteToUDP([]byte(msg), dst); err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 {
			time.Sleep(time.Millisecond) // keep the local socket buffer from overflowing
		}
	}
	sendTime := time.Since(start)
	got := <-answered
	t.Logf("flood: %d INVITEs in %v (%.0f/s) from %s, %d of them answered", floods, sendTime.Round(time.Millisecond), floods/sendTime.Seconds(), floodIP, got)
	// The limit is 100/s per source over 2 s: at most 200 requests are
	// taken (each answered with up to a 100 and a final, plus resends).
	if got > 250 {
		t.Errorf("the flooder got %d answers: it was not blocked", got)
	}
	if !u.alive() {
		t.Fatal("unit died under the flood")
	}
	if !u.optionsOK(t, "udp", u.insideUDP) {
		t.Fatal("unit not answering another source after the flood")
	}
	if st, ok := c.hangUp(t); st != 200 || !ok {
		t.Fatalf("call disturbed by the flood: BYE %d, trunk got BYE %v", st, ok)
	}
	c.close()
	// The flooder is still blocked: its OPTIONS goes unanswered ...
	probe := siptest.NewTag()
	fl.Send(u.insideUDP, request("OPTIONS", "sip:"+u.insideUDP, fl.Local, probe, siptest.NewTag(), "", 1, "", ""))
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		m, _, err := fl.Recv(time.Until(end))
		if err != nil {
			break
		}
		if m.CallID() != nil && m.CallID().Value() == probe {
			t.Error("the flooder is answered again right after the flood")
		}
	}
	// ... while the PBX peer places a new call.
	c2 := startCall(t, u)
	if st, ok := c2.hangUp(t); st != 200 || !ok {
		t.Fatalf("second call: BYE %d, trunk got BYE %v", st, ok)
	}
	if v := u.metric(t, "palisade_guard_blocks_total", "cause", "rate"); v == 0 {
		t.Error("palisade_guard_blocks_total{cause=rate} did not count the block")
	} else {
		t.Logf("palisade_guard_blocks_total{cause=rate} = %v, dropped = %v", v, u.metric(t, "palisade_guard_refused_total", "action", "dropped"))
	}
	rssAfter := u.rssKiB(t)
	t.Logf("RSS %d KiB before, %d KiB after the flood", rssBefore, rssAfter)
	if rssAfter > rssBefore+200*1024 {
		t.Errorf("RSS grew by %d KiB under the flood", rssAfter-rssBefore)
	}
}

// TestOutsideAccessControl: on the outside only the trunk peer may start
// dialogs; an unknown source gets 403 (reject) or nothing (drop).
func TestOutsideAccessControl(t *testing.T) {
	for _, mode := range []string{"reject", "drop"} {
		t.Run(mode, func(t *testing.T) {
			u := startUnit(t, func(c *config.Config) { c.SIP.UnknownSource = mode })
			s := siptest.ListenRawUDP(t, floodIP+":0")
			s.Send(u.outside, request("INVITE", "sip:4711@"+u.outside, s.Local, siptest.NewTag(), siptest.NewTag(), "", 1, "", sdp(floodIP, 40000)))
			m, _, err := s.Recv(2 * time.Second)
			switch mode {
			case "reject":
				if err != nil || !strings.HasPrefix(m.String(), "SIP/2.0 403") {
					t.Fatalf("unknown source's INVITE on the outside: %v %v, want 403", m, err)
				}
				if strings.Contains(m.String(), "Server:") {
					t.Errorf("403 tells the scanner who we are:\\n%s", m)
				}
			case "drop":
				if err == nil {
					t.Fatalf("unknown source answered in drop mode:\\n%s", m)
				}
			}
		})
	}
}
