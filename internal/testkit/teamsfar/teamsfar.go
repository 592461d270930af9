// Package teamsfar is a far end for tests that behaves the way Microsoft's
// public documentation says the SIP proxy of Teams Direct Routing does:
// "Direct Routing - SIP protocol" (SIP), "Plan Direct Routing" (FQDNs,
// certificates, address ranges) and "Direct Routing - media" (SDP). Every
// behaviour names the rule it follows. It runs one sipgo user agent per
// datacentre (sip, sip2, sip3.pstnhub.microsoft.com stand-ins on loopback
// addresses), any of which a test can take down.
//
// It is test scaffolding: import it only from _test.go files.
package teamsfar

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Names of the three datacentres, in the order an SBC tries them ("Plan
// Direct Routing": sip.pstnhub.microsoft.com first, then sip2 and sip3).
var Names = []string{"sip.pstnhub.microsoft.com", "sip2.pstnhub.microsoft.com", "sip3.pstnhub.microsoft.com"}

// Options configure the far end.
type Options struct {
	// SBCFQDN is the FQDN the tenant paired (the tenant's
	// New-CsOnlinePSTNGateway -Fqdn): the Contact of OPTIONS and INVITE
	// must carry it, and the SBC's certificate must name it.
	SBCFQDN string
	// SBCAddr is where the SBC's TLS listener is (host:port): Teams sends
	// its own requests (REFER, BYE) there. The FQDN is not resolved.
	SBCAddr string
	// Cert is the proxy's certificate, used as TLS server and as TLS
	// client; Microsoft's come from public CAs with serverAuth only.
	Cert tls.Certificate
	// Roots verify the SBC's certificate.
	Roots *x509.CertPool
	// Listen are the addresses of the datacentres ("127.0.0.71:0"); empty
	// = three on 127.0.0.1 with ports chosen by the system.
	Listen []string
	Log    *slog.Logger
}

// DownMode is how a datacentre fails.
type DownMode int32

const (
	// Up answers normally.
	Up DownMode = iota
	// Unreachable accepts TCP connections and closes them at once (a
	// datacentre in an outage: the TLS handshake fails).
	Unreachable
	// Unavailable answers every request 503 with Retry-After.
	Unavailable
	// Silent keeps its connections and TLS but answers nothing, not even
	// 100 Trying (a proxy that hangs): only the SBC's own timer for an
	// INVITE without any response moves the call on.
	Silent
)

// Action is what the far end does with an INVITE to a number.
type Action int

const (
	// Answer rings once and answers with SDP.
	Answer Action = iota
	// Decline answers 603 (the Teams user declined).
	Decline
	// Fork rings from two endpoints (two 180 with different To tags, as a
	// user signed in on two devices) and answers from the first.
	Fork
	// Transfer answers, then sends REFER to Script.ReferTo with the x-m and
	// x-t parameters Teams puts in Refer-To.
	Transfer
)

// Script is the behaviour for one called number.
type Script struct {
	Action Action
	// ReferTo is the number a Transfer refers to ("+4930…" for a Teams
	// user or a PSTN number reached through the SBC).
	ReferTo string
	// MRI and Tenant are the x-m and x-t values of the REFER.
	MRI, Tenant string
	// ReferHost is the host of the Refer-To URI; "" = Names[0], where
	// Teams itself routes the target (a test names the SBC here to have
	// the SBC route it, e.g. to a PBX extension).
	ReferHost string
}

// Request is one request a datacentre received, with its answer.
type Request struct {
	DC     int // index into Names; -1: over the connection Teams opened (REFER)
	Req    *sip.Request
	Status int
	// Sent are the responses to an INVITE in the order they were sent
	// (provisional ones included); sipgo hands a client's transaction its
	// responses from concurrent goroutines, so a test compares wire order
	// here.
	Sent []*sip.Response
}

// Far is the running far end.
type Far struct {
	opts    Options
	DCs     []*Datacenter
	log     *slog.Logger
	client  *sipgo.Client // Teams as TLS client (REFER)
	cliUA   *sipgo.UserAgent
	mu      sync.Mutex
	scripts map[string]Script
	got     []Request
	signal  chan struct{} // closed and replaced on every new request
	ctx     context.Context
	cancel  context.CancelFunc
}

// Datacenter is one of the proxies.
type Datacenter struct {
	Name string
	Addr string // host:port of its TLS listener
	idx  int
	far  *Far
	mode atomic.Int32
	// RetryAfter is the Retry-After (seconds) of 503 answers when
	// Unavailable; 0 = 60.
	RetryAfter atomic.Int32
	// Swallowed counts the INVITEs received while Silent.
	Swallowed atomic.Int32
	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	ln        *downListener
}

// SetDown changes how the datacentre fails (Up to restore it).
// Unreachable also cuts the connections it has: an outage breaks them.
func (d *Datacenter) SetDown(m DownMode) {
	d.mode.Store(int32(m))
	if m == Unreachable {
		d.ln.closeAll()
	}
}

// Start runs the far end until Close.
func Start(o Options) (*Far, error) {
	if o.SBCFQDN == "" || len(o.Cert.Certificate) == 0 || o.Roots == nil {
		return nil, errors.New("teamsfar: SBCFQDN, Cert and Roots are required")
	}
	if len(o.Listen) == 0 {
		o.Listen = []string{"127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	f := &Far{opts: o, log: o.Log.With("peer", "teamsfar"), scripts: map[string]Script{}, signal: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	// Teams as TLS client: its certificate, and the SBC's checked against
	// the roots and the paired FQDN ("Plan Direct Routing", SBC
	// certificate: the FQDN must be in the certificate's CN or SAN).
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("Microsoft.PSTNHub.SIPProxy"), sipgo.WithUserAgenTLSConfig(f.clientTLS()))
	if err != nil {
		return nil, err
	}
	f.cliUA = ua
	if f.client, err = sipgo.NewClient(ua); err != nil {
		ua.Close()
		return nil, err
	}
	// The SBC may send its in-dialog requests (NOTIFY, BYE) over the
	// connection Teams opened for the REFER: the proxy answers them there
	// too (recorded with DC -1).
	cliSrv, err := sipgo.NewServer(ua)
	if err != nil {
		ua.Close()
		return nil, err
	}
	onClientConn := func(req *sip.Request, tx sip.ServerTransaction) {
		f.record(Request{DC: -1, Req: req, Status: 200})
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	}
	cliSrv.OnBye(onClientConn)
	cliSrv.OnNotify(onClientConn)
	for i, addr := range o.Listen {
		name := fmt.Sprintf("dc%d", i+1)
		if i < len(Names) {
			name = Names[i]
		}
		d, err := f.startDC(i, name, addr)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.DCs = append(f.DCs, d)
	}
	return f, nil
}

// Close stops every datacentre.
func (f *Far) Close() {
	f.cancel()
	for _, d := range f.DCs {
		d.ln.Close()
		d.srv.Close()
		d.ua.Close()
	}
	if f.cliUA != nil {
		f.cliUA.Close()
	}
}

// DNSRecords are the A records that resolve the datacentres' names to
// their addresses, for a test DNS server (routing/dnstest).
func (f *Far) DNSRecords() []string {
	var rrs []string
	for i, d := range f.DCs {
		host, _, _ := net.SplitHostPort(d.Addr)
		rrs = append(rrs, Names[i]+". 60 IN A "+host)
	}
	return rrs
}

// On sets the behaviour for INVITEs to number (with its "+"); numbers
// without a script are answered.
func (f *Far) On(number string, s Script) {
	f.mu.Lock()
	f.scripts[number] = s
	f.mu.Unlock()
}

// Requests returns what the datacentres received so far, in order.
func (f *Far) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.got...)
}

// Count is the number of requests of method received (any datacentre).
func (f *Far) Count(method sip.RequestMethod) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Req.Method == method {
			n++
		}
	}
	return n
}

// Wait returns the first received request for which match is true, waiting
// until ctx ends.
func (f *Far) Wait(ctx context.Context, match func(Request) bool) (Request, error) {
	for {
		f.mu.Lock()
		for _, r := range f.got {
			if match(r) {
				f.mu.Unlock()
				return r, nil
			}
		}
		ch := f.signal
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Request{}, ctx.Err()
		}
	}
}

func (f *Far) record(r Request) {
	f.mu.Lock()
	f.got = append(f.got, r)
	close(f.signal)
	f.signal = make(chan struct{})
	f.mu.Unlock()
}

func (f *Far) clientTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12, // "Plan Direct Routing": TLS 1.2 or later
		Certificates: []tls.Certificate{f.opts.Cert},
		// The SBC is reached by address; its certificate is checked
		// against the paired FQDN in VerifyConnection.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			return f.verifySBC(cs.PeerCertificates)
		},
	}
}

// verifySBC checks the SBC's certificate: a chain to the roots, with
// serverAuth or clientAuth (public CAs issue serverAuth only from 2026,
// and Microsoft accepts it), naming the paired FQDN.
func (f *Far) verifySBC(certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return errors.New("teamsfar: the SBC sent no certificate (mutual TLS is required)")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: f.opts.Roots, Intermediates: inter, DNSName: f.opts.SBCFQDN,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return fmt.Errorf("teamsfar: SBC certificate refused: %w", err)
	}
	return nil
}

// downListener closes connections while its datacentre is Unreachable,
// and remembers the ones it accepted so that an outage can cut them.
type downListener struct {
	net.Listener
	d     *Datacenter
	cfg   *tls.Config
	mu    sync.Mutex
	conns []net.Conn
}

func (l *downListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if DownMode(l.d.mode.Load()) == Unreachable {
			c.Close()
			continue
		}
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
		return silentConn{tls.Server(c, l.cfg), l.d}, nil
	}
}

// silentConn drops what it reads while its datacentre is Silent.
type silentConn struct {
	*tls.Conn
	d *Datacenter
}

func (c silentConn) Read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if err != nil || DownMode(c.d.mode.Load()) != Silent {
			return n, err
		}
		c.d.Swallowed.Add(int32(bytes.Count(b[:n], []byte("INVITE sip"))))
	}
}

func (l *downListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

func (f *Far) startDC(i int, name, addr string) (*Datacenter, error) {
	d := &Datacenter{Name: name, idx: i, far: f}
	var err error
	if d.ua, err = sipgo.NewUA(sipgo.WithUserAgent("Microsoft.PSTNHub.SIPProxy")); err != nil {
		return nil, err
	}
	if d.srv, err = sipgo.NewServer(d.ua); err != nil {
		d.ua.Close()
		return nil, err
	}
	raw, err := net.Listen("tcp", addr)
	if err != nil {
		d.ua.Close()
		return nil, err
	}
	d.Addr = raw.Addr().String()
	srvTLS := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{f.opts.Cert},
		// Mutual TLS: the SBC must present its certificate ("Plan Direct
		// Routing": the connection is mutually authenticated).
		ClientAuth: tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return f.verifySBC(cs.PeerCertificates)
		},
	}
	d.ln = &downListener{Listener: raw, d: d, cfg: srvTLS}
	d.srv.OnOptions(d.onOptions)
	d.srv.OnInvite(d.onInvite)
	d.srv.OnAck(func(req *sip.Request, _ sip.ServerTransaction) { f.record(Request{DC: i, Req: req}) })
	d.srv.OnBye(d.okay)
	d.srv.OnNotify(d.okay) // NOTIFYs of a REFER's progress
	d.srv.OnCancel(d.okay)
	go d.srv.ServeTLS(d.ln)
	return d, nil
}

func (d *Datacenter) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, body []byte, before ...*sip.Response) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	if code == 503 {
		ra := d.RetryAfter.Load()
		if ra == 0 {
			ra = 60
		}
		res.AppendHeader(sip.NewHeader("Retry-After", fmt.Sprint(ra)))
	}
	// Recorded first: a test that has the answer finds the request.
	d.far.record(Request{DC: d.idx, Req: req, Status: code, Sent: append(before, res)})
	if err := tx.Respond(res); err != nil {
		d.far.log.Debug("teamsfar: response not sent", "err", err)
	}
	return res
}

func (d *Datacenter) okay(req *sip.Request, tx sip.ServerTransaction) {
	d.respond(req, tx, 200, "OK", nil)
}

// check applies the rules every request from the SBC must pass; it
// returns a status and reason, or 0.
func (d *Datacenter) check(req *sip.Request) (int, string) {
	// A datacentre that is up but overloaded or in maintenance answers 503
	// with Retry-After (RFC 3261 §21.5.4); the SBC tries the next FQDN.
	if DownMode(d.mode.Load()) == Unavailable {
		return 503, "Service Unavailable"
	}
	// "Direct Routing - SIP protocol": the SIP proxy finds the SBC (and
	// the tenant) by the FQDN in the Contact header; an FQDN that is not a
	// paired SBC is refused.
	ct := req.Contact()
	if ct == nil || !strings.EqualFold(ct.Address.Host, d.far.opts.SBCFQDN) {
		got := "none"
		if ct != nil {
			got = ct.Address.Host
		}
		return 403, "Forbidden: Contact " + got + " is not a paired SBC FQDN"
	}
	// The SBC identifies itself in X-MS-SBC (vendor/model/version), which
	// Microsoft requires of certified and of bring-your-own SBCs alike.
	if req.GetHeader("X-MS-SBC") == nil {
		return 403, "Forbidden: X-MS-SBC missing"
	}
	// "Direct Routing - SIP protocol": requests with a Replaces header
	// are rejected.
	if req.GetHeader("Replaces") != nil {
		return 403, "Forbidden: Replaces is not supported"
	}
	return 0, ""
}

// onOptions: the OPTIONS exchange must succeed with 200 OK before calls
// flow ("Direct Routing - SIP protocol", processing the incoming request);
// the answer lists what the proxy allows.
func (d *Datacenter) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if code, reason := d.check(req); code != 0 {
		d.respond(req, tx, code, reason, nil)
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, OPTIONS, CANCEL, BYE, NOTIFY, REFER"))
	d.far.record(Request{DC: d.idx, Req: req, Status: 200})
	_ = tx.Respond(res)
}
