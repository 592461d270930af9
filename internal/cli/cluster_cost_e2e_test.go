package cli

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
)

// etcdRequests reads every member's metrics: the unary requests the
// members served, by method, and the bytes they received from clients.
func etcdRequests(t *testing.T, c *etcdtest.Cluster) (map[string]float64, float64) {
	t.Helper()
	byMethod := map[string]float64{}
	var bytes float64
	for _, m := range c.Members {
		resp, err := http.Get(m.ClientURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			name, rest, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				continue
			}
			switch {
			case strings.HasPrefix(name, "etcd_network_client_grpc_received_bytes_total"):
				bytes += v
			case strings.HasPrefix(name, "grpc_server_handled_total{") && strings.Contains(name, `grpc_type="unary"`):
				_, meth, _ := strings.Cut(name, `grpc_method="`)
				meth, _, _ = strings.Cut(meth, `"`)
				byMethod[meth] += v
			}
		}
		resp.Body.Close()
	}
	return byMethod, bytes
}

// etcdWrites are the methods that change etcd (a Txn may only read: it is
// counted as a write here, the worst case).
var etcdWrites = []string{"Put", "DeleteRange", "Txn", "LeaseGrant", "LeaseRevoke"}

// TestClusterEtcdCostPerCall places ordinary calls (sipp PBX → unit →
// sipp trunk) through a unit on a three-member etcd and prints the etcd
// requests and client bytes per call. The calls themselves write nothing:
// the only writes in the window are the unit's membership renewals (one
// Put every 5 s).
func TestClusterEtcdCostPerCall(t *testing.T) {
	sipp := testkit.NeedBinary(t, "sipp", "sip-tester")
	etcd := etcdtest.Start(t, 3)
	pbxPort, trunkPort := testkit.FreePort(t, "udp", "127.0.0.1"), testkit.FreePort(t, "udp", "127.0.0.3")
	cfg := sippConfig(t, pbxPort, trunkPort)
	dir := filepath.Join(t.TempDir(), "data")
	unit := startUnit(t, dir, writeInitial(t, cfg), "--store", etcd.URL(fmt.Sprintf("cost-%d", os.Getpid())), "--unit", "a")
	// a first call, so that nothing a unit does once (first routing, first
	// record) is counted
	inside := fmt.Sprintf("127.0.0.1:%d", cfg.SIP.Listeners[0].Port)
	if out, err := sippCalls(t, sipp, 1, 1, 100, pbxPort, trunkPort, inside); err != nil {
		t.Fatalf("sipp: %v\n%s\n%s", err, out, testkit.LastLines(unit.log.String(), 40))
	}

	const calls = 200
	before, bytesBefore := etcdRequests(t, etcd)
	start := time.Now()
	if out, err := sippCalls(t, sipp, calls, 20, 200, pbxPort, trunkPort, inside); err != nil {
		t.Fatalf("sipp: %v\n%s\n%s", err, out, testkit.LastLines(unit.log.String(), 40))
	}
	elapsed := time.Since(start)
	after, bytesAfter := etcdRequests(t, etcd)

	var writes float64
	var detail []string
	for _, m := range etcdWrites {
		d := after[m] - before[m]
		writes += d
		detail = append(detail, fmt.Sprintf("%s %.0f", m, d))
	}
	reads := after["Range"] - before["Range"]
	bytes := bytesAfter - bytesBefore
	renewals := elapsed.Seconds()/5 + 2 // the membership Put every 5 s, and one at each end
	fmt.Printf("etcd cost of %d calls in %s: %.0f writes (%s), %.0f reads, %.0f bytes from clients; "+
		"per call: %.3f writes, %.0f bytes (membership renewals in the window: about %.0f)\n",
		calls, elapsed.Round(time.Millisecond), writes, strings.Join(detail, ", "), reads, bytes,
		writes/calls, bytes/calls, renewals)
	if writes > renewals {
		t.Fatalf("%.0f etcd writes during %d calls (%s), want only the membership renewals (about %.0f)",
			writes, calls, strings.Join(detail, ", "), renewals)
	}
}
