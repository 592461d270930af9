// Command sut runs Palisade's SIP subsystem alone (no store, no admin, SDP
// passed through) as the system under test of the signalling benchmark:
// UDP in on -listen, every call relayed to -uas (UDP or TLS), statistics on
// stderr once a second.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
)

// insecureClient is a pki.Provider for the benchmark: it presents no
// certificate and trusts any server (Kamailio's self-signed one).
type insecureClient struct{}

func (insecureClient) ServerConfig(config.Listener) (*tls.Config, error) {
	return nil, fmt.Errorf("no TLS listener in the benchmark")
}

func (insecureClient) ClientConfig(name string) (*tls.Config, error) {
	return &tls.Config{InsecureSkipVerify: true, ServerName: name, MinVersion: tls.VersionTLS12}, nil //nolint:gosec // benchmark peer
}

func main() {
	listen := flag.String("listen", "127.0.0.1:5060", "inside UDP listener")
	outside := flag.String("outside", "127.0.0.2", "outside interface address")
	uas := flag.String("uas", os.Getenv("UAS_URI"), "where calls go (sip:host:port[;transport=tls])")
	prof := flag.String("cpuprofile", os.Getenv("SUT_CPUPROFILE"), "write a CPU profile here")
	debugAddr := flag.String("debug-addr", os.Getenv("SUT_DEBUG_ADDR"), "serve net/http/pprof here (e.g. 127.0.0.1:6061)")
	flag.Parse()
	if *debugAddr != "" {
		go http.ListenAndServe(*debugAddr, nil) //nolint:errcheck,gosec // benchmark diagnostics on loopback
	}
	if *prof != "" {
		f, err := os.Create(*prof)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if *uas == "" {
		*uas = "sip:127.0.0.1:5090"
	}
	in := netip.MustParseAddrPort(*listen)
	cfg := config.Default()
	cfg.Network.Interfaces = []config.Interface{
		{Name: "inside", Address: in.Addr().String()}, {Name: "outside", Address: *outside},
	}
	cfg.Network.DNSServers = []string{"127.0.0.1:9"}
	cfg.SIP.Listeners = []config.Listener{
		{Interface: "inside", Transport: "udp", Port: int(in.Port())},
		{Interface: "outside", Transport: "udp"},
	}
	cfg.Observe.TraceCalls = false
	cfg.DialPlan.Rules = []config.DialRule{{Name: "all", Source: "inside", ForwardTo: []config.Forward{{URI: *uas}}}}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s := b2bua.New(b2bua.Deps{Logger: log, Media: media.Passthrough{}, TLS: insecureClient{}})
	if err := s.Apply(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, "apply:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "sut: inside udp %s → %s\n", s.ListenAddr("inside", "udp"), *uas)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(time.Second)
	for {
		select {
		case <-sig:
			s.Close()
			pprof.StopCPUProfile()
			return
		case <-tick.C:
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Fprintf(os.Stderr, "stats calls=%d heap_inuse=%d heap_alloc=%d sys=%d rss=%d goroutines=%d\n",
				s.CallCount(), ms.HeapInuse, ms.HeapAlloc, ms.Sys, rss(), runtime.NumGoroutine())
		}
	}
}

func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res int64
	fmt.Sscan(strings.TrimSpace(string(b)), &size, &res)
	return res * int64(os.Getpagesize())
}
