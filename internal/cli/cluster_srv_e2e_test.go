package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/routing"
	"github.com/palisade-sbc/palisade/internal/routing/dnstest"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

// TestClusterCallsSpreadBySRV: two `palisade run` units of a cluster are
// the two equal targets of a DNS SRV record (a miekg/dns server). 1,000
// calls from a trunk that finds the units through Palisade's own RFC 3263
// resolver, four at a time and at most 200 a second, are answered by the PBX behind them; each
// unit's own call records (listed cluster-wide) hold 50 % ± 10 % of them.
func TestClusterCallsSpreadBySRV(t *testing.T) {
	const calls, workers = 1000, 4
	etcd := etcdtest.Start(t, 3)
	cfg, at := relayConfig(t, "a", "b")
	pbx := siptest.NewPeer(t, "pbx", "127.0.0.1", "udp")
	trunk := siptest.NewPeer(t, "trunk", "127.0.0.3", "udp")
	cfg.Peers = []config.Peer{
		{Name: "pbx", Kind: "pbx", Interface: "inside", Address: pbx.Addr.String(), Transport: "udp"},
		{Name: "itsp", Kind: "itsp", Interface: "outside", Address: trunk.Addr.String(), Transport: "udp"},
	}
	cfg.SIP.MaxCallRate, cfg.SIP.SourceRateLimit = 0, 0
	// room for the calls in progress and those being released
	base := 20000 + testkit.FreePort(t, "udp", "127.0.0.1")%20000&^1
	for i, n := range []string{"a", "b"} {
		u := cfg.Units[n]
		u.MediaPortMin, u.MediaPortMax = base+400*i, base+400*i+399
		cfg.Units[n] = u
	}
	initial := writeInitial(t, cfg)
	store := etcd.URL(fmt.Sprintf("srv-%d", os.Getpid()))
	dirA := filepath.Join(t.TempDir(), "a")
	startUnit(t, dirA, initial, "--store", store, "--unit", "a")
	startUnit(t, filepath.Join(t.TempDir(), "b"), initial, "--store", store, "--unit", "b")

	dns, err := dnstest.Start(
		fmt.Sprintf("_sip._udp.sbc.example. 60 IN SRV 10 50 %d unit-a.sbc.example.", at["a"].outside.Port()),
		fmt.Sprintf("_sip._udp.sbc.example. 60 IN SRV 10 50 %d unit-b.sbc.example.", at["b"].outside.Port()),
		"unit-a.sbc.example. 60 IN A "+at["a"].outside.Addr().String(),
		"unit-b.sbc.example. 60 IN A "+at["b"].outside.Addr().String(),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	res, err := routing.NewResolver([]string{dns.Addr})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var mu sync.Mutex
	sent := map[string]int{}
	var failed []string
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				err := func() error {
					ts, err := res.Resolve(ctx, routing.Hop{Scheme: "sip", Host: "sbc.example"})
					if err != nil || len(ts) != 2 {
						return fmt.Errorf("SRV resolution: %v %v", ts, err)
					}
					to := "a"
					if ts[0].Addr == at["b"].outside {
						to = "b"
					}
					mu.Lock()
					sent[to]++
					mu.Unlock()
					cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
					defer ccancel()
					sess, err := trunk.Call(cctx, ts[0].Addr, "4687", siptest.SDP("127.0.0.3", 6000+2*i))
					if err != nil {
						return err
					}
					defer sess.Close()
					if err := sess.WaitAnswer(cctx, sipgo.AnswerOptions{}); err != nil {
						return fmt.Errorf("call %d to unit %s: %w", i, to, err)
					}
					if err := sess.Ack(cctx); err != nil {
						return err
					}
					return sess.Bye(cctx)
				}()
				if err != nil {
					mu.Lock()
					failed = append(failed, err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	start := time.Now()
	pace := time.NewTicker(5 * time.Millisecond) // at most 200 calls a second
	defer pace.Stop()
	for i := range calls {
		<-pace.C
		next <- i
	}
	close(next)
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d of %d calls failed, first: %s", len(failed), calls, failed[0])
	}

	// What each unit carried, from its own records.
	var rows []observe.CallRow
	got := map[string]int{}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		if err := json.Unmarshal([]byte(mustCLI(t, dirA, "calls", "--ended", "--json")), &rows); err != nil {
			t.Fatal(err)
		}
		got = map[string]int{}
		for _, r := range rows {
			if r.Code == 200 {
				got[r.Unit]++
			}
		}
		if got["a"]+got["b"] == calls || time.Now().After(deadline) {
			break
		}
	}
	fmt.Printf("%d calls through DNS SRV in %s: unit a %d (%.1f %%), unit b %d (%.1f %%); the trunk chose a %d, b %d\n",
		calls, time.Since(start).Round(time.Millisecond), got["a"], 100*float64(got["a"])/calls, got["b"],
		100*float64(got["b"])/calls, sent["a"], sent["b"])
	if got["a"]+got["b"] != calls {
		t.Fatalf("the units recorded %d answered calls (a %d, b %d), want %d", got["a"]+got["b"], got["a"], got["b"], calls)
	}
	for _, u := range []string{"a", "b"} {
		if share := float64(got[u]) / calls; share < 0.4 || share > 0.6 {
			t.Fatalf("unit %s carried %.1f %% of the calls, want 50 %% ± 10 %%", u, 100*share)
		}
	}
}
