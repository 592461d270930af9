package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media"
)

// runRelay is the relay process: media.Relay with a small HTTP control
// interface on 127.0.0.1 (offer, answer, close, mem) so that the load
// generator, in its own process, drives calls the way the SIP layer would.
func runRelay(portMin, portMax int, batch time.Duration, realtime int) error {
	cfg := config.Default()
	cfg.Media.PortMin, cfg.Media.PortMax = portMin, portMax
	if batch >= 0 {
		cfg.Media.BatchInterval = config.Duration(batch)
	}
	cfg.Media.RealtimePriority = realtime
	r, err := media.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer r.Close()
	var mu sync.Mutex
	calls := map[string]media.Call{}
	get := func(id string) (media.Call, error) {
		mu.Lock()
		defer mu.Unlock()
		if c, ok := calls[id]; ok {
			return c, nil
		}
		c, err := r.NewCall(id,
			media.Leg{Interface: "inside", Bind: netip.MustParseAddr("127.0.0.1")},
			media.Leg{Interface: "outside", Bind: netip.MustParseAddr("127.0.0.1")})
		if err != nil {
			return nil, err
		}
		calls[id] = c
		return c, nil
	}
	side := func(s string) media.Side {
		if s == "b" {
			return media.SideB
		}
		return media.SideA
	}
	mux := http.NewServeMux()
	sdpHandler := func(answer bool) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(req.Body)
			c, err := get(req.URL.Query().Get("id"))
			if err != nil {
				http.Error(w, err.Error(), 503)
				return
			}
			s := side(req.URL.Query().Get("side"))
			var out []byte
			if answer {
				out, err = c.Answer(s, body)
			} else {
				out, err = c.Offer(s, body)
			}
			if err != nil {
				http.Error(w, err.Error(), 488)
				return
			}
			w.Write(out)
		}
	}
	mux.HandleFunc("/offer", sdpHandler(false))
	mux.HandleFunc("/answer", sdpHandler(true))
	mux.HandleFunc("/stats", func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		c := calls[req.URL.Query().Get("id")]
		mu.Unlock()
		if c != nil {
			s := c.Stats()
			fmt.Fprintf(w, "%d %d %d %d\n", s.Legs[0].PacketsIn, s.Legs[0].PacketsOut, s.Legs[1].PacketsIn, s.Legs[1].PacketsOut)
		}
	})
	mux.HandleFunc("/mem", func(w http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(w, "%d %d %d\n", ms.HeapInuse+ms.StackInuse, runtime.NumGoroutine(), r.ActiveCalls())
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		for id, c := range calls {
			c.Close()
			delete(calls, id)
		}
		mu.Unlock()
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("CONTROL %s\n", ln.Addr())
	go func() { // the generator closes our stdin when it is done
		bufio.NewReader(os.Stdin).ReadString('\n')
		ln.Close()
	}()
	return http.Serve(ln, mux)
}
