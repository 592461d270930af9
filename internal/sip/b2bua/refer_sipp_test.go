package b2bua

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
)

// TestSippReferFromOutside: sipp plays Teams on the outside, calls the PBX
// through the unit and transfers the call with REFER; the unit handles it
// (User-Agent mode), reports 100 and 200 by NOTIFY and hangs sipp up.
func TestSippReferFromOutside(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("install Debian package sip-tester (sipp)")
	}
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	pbx.SetOnInvite(answerWith("127.0.0.1", 6600))
	port := freePort(t, "udp", "127.0.0.3")
	u := newTestUnit(t, pbx, nil, func(c *config.Config) {
		c.Routing.Refer.UserAgents = []string{"teams"}
		c.Peers = append(c.Peers, config.Peer{Name: "itsp", Kind: "itsp", Interface: "outside",
			Address: "127.0.0.3:" + strconv.Itoa(port), Transport: "udp"})
	})
	sf, _ := filepath.Abs("testdata/sipp/refer_uac.xml")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sipp", "-sf", sf, u.outside().String(), "-s", "4930123", "-i", "127.0.0.3",
		"-p", strconv.Itoa(port), "-t", "u1", "-m", "1", "-recv_timeout", "10000", "-timeout", "40s",
		"-nostdin", "-bind_local", "-mi", "127.0.0.3", "-mp", strconv.Itoa(freeMediaPort(t, "127.0.0.3")),
		"-trace_err", "-error_file", filepath.Join(dir, "err.log"))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		errs, _ := os.ReadFile(filepath.Join(dir, "err.log"))
		t.Fatalf("sipp: %v\n%s\n%s", err, tail(string(out), 1500), tail(string(errs), 3000))
	}
	orig := pbx.Session()
	if inv := nextInvite(t, pbx, false); inv.Recipient.User != "4930123" {
		t.Fatalf("first INVITE to %s", inv.Recipient.User)
	}
	if inv := nextInvite(t, pbx, false); inv.Recipient.User != "200" {
		t.Fatalf("transfer INVITE to %s", inv.Recipient.User)
	}
	if re := nextInvite(t, pbx, true); !strings.Contains(string(re.Body()), "m=audio 6600") {
		t.Fatalf("transferee re-INVITE %q", re.Body())
	}
	waitFor(t, func() bool { return u.CallCount() == 1 }, "the transferred call only")
	if err := orig.Bye(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	pbx.Next(sip.BYE)
	waitNoCalls(t, u.Service)
}
