// Package routing decides where a SIP request goes: the DNS override table,
// the local registrar (a hook filled by the registrar issue), the dial plan,
// and RFC 3263 resolution of SIP domains. A Table is built from one
// configuration and never changes; the SIP layer swaps whole tables on apply.
package routing

import (
	"errors"
	"net/netip"
	"strings"
	"time"
)

// ErrNoRoute means no routing step produced a destination (the SIP layer
// answers 404).
var ErrNoRoute = errors.New("routing: no route for the request")

// ErrAllDown means a dial plan rule matched but every one of its peers is
// marked down (the SIP layer answers 503).
var ErrAllDown = errors.New("routing: every destination of the matching rule is down")

// FlowHeader marks a request one unit of a cluster relays to the unit that
// holds the called phone's flow (its TCP/TLS connection or NAT binding):
// the registrar's signed token naming the binding. The receiving unit sends
// the request to that binding only; the header never leaves the cluster.
const FlowHeader = "X-Palisade-Flow"

// Request is what routing looks at in an incoming request.
type Request struct {
	Method          string
	User            string // Request-URI user part
	Host            string // Request-URI host
	FromURI         string // From URI without parameters, e.g. sip:alice@example.com
	SourcePeer      string // name of the peer the request came from, "" if unknown
	SourceInterface string // interface the request arrived on
}

// Hop is one destination to try, in order: a host (IP address or name) with
// optional port and transport. The SIP layer resolves it with a Resolver
// (RFC 3263 for names) and fails over between the resolved targets.
type Hop struct {
	Step      string // dns_override | registrar | dial_plan | default | redirect
	Rule      string // dial plan rule name, when Step is dial_plan
	Peer      string // peer name, "" when the hop is a bare URI
	Interface string // interface to send on; "" = the other side of the source
	Scheme    string // sip | sips
	User      string // Request-URI user to send (after rewriting)
	Host      string // Request-URI host (domain or address)
	Port      int    // 0 = not given (RFC 3263 decides)
	Transport string // udp | tcp | tls; "" = not given (RFC 3263 decides)
	// Timeout is how long the hop may ring without a final answer before
	// the next hop is tried (0 = the configured default).
	Timeout time.Duration
	// Headers are extra headers for requests to this hop (peer headers).
	Headers map[string]string
}

// Target is one resolved transport destination.
type Target struct {
	Addr      netip.AddrPort
	Transport string // udp | tcp | tls
	// ServerName is the name a TLS server certificate must match (the SIP
	// domain or host name; empty for IP-only targets).
	ServerName string
	Priority   int
	Weight     int
}

// RegistrarLookup is the hook the local registrar fills: it returns the
// contacts registered for a Request-URI, or nil. Until the registrar exists
// the SIP layer passes nil and the step never matches.
type RegistrarLookup interface {
	Lookup(user, host string) []Hop
}

// normTransport lowercases a transport name; "any" (let RFC 3263 decide)
// becomes "".
func normTransport(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	if t == "any" {
		return ""
	}
	return t
}
