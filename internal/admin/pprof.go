package admin

import (
	"net/http"
	"net/http/pprof"
)

// withProfiling adds Go's runtime profiles under /debug/pprof/ to the
// handler of DATA/admin.sock only: the socket is mode 0600, so only the
// unit's owner reaches them, and they never appear on the HTTPS listener.
// Operators (and bench/sip) take a CPU profile of a unit under load with
//
//	curl --unix-socket DATA/admin.sock -o cpu.pprof 'http://unit/debug/pprof/profile?seconds=10'
func withProfiling(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}
