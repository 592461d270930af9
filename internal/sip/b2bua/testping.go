package b2bua

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// PingOutcome is one OPTIONS from the tools: the request as sent, the final
// answer (nil: none) and both as a ladder.
type PingOutcome struct {
	Peer     string // the configured peer pinged, or the one at the URI's address
	URI      string // the Request-URI
	Target   string // transport address it went to
	Request  *sip.Request
	Response *sip.Response
	RTT      time.Duration
	Err      error // no answer: why
	Messages []observe.Message
}

// Ping sends one OPTIONS to dest, the name of a configured peer (its first
// target, as the keepalives) or a SIP URI (resolved as RFC 3263 says,
// from the interface of the peer at that address or the first other
// interface). The error is for a dest that cannot be pinged at all.
func (s *Service) Ping(ctx context.Context, dest string) (*PingOutcome, error) {
	dest = strings.TrimSpace(dest)
	rt := s.rt.Load()
	if rt.table == nil {
		return nil, errors.New("sip: not configured")
	}
	var h routing.Hop
	if strings.Contains(dest, ":") {
		var u sip.Uri
		if err := sip.ParseUri(dest, &u); err != nil || u.Host == "" || (u.Scheme != "sip" && u.Scheme != "sips") {
			return nil, fmt.Errorf("%q is neither a peer name nor a SIP URI (sip:host[:port][;transport=udp|tcp|tls])", dest)
		}
		h = rt.peerOfHop(routing.Hop{Step: "uri", Scheme: u.Scheme, User: u.User, Host: u.Host, Port: u.Port, Transport: uriTransport(&u)})
	} else {
		ph, ok := rt.table.PeerHop(dest)
		if !ok {
			return nil, fmt.Errorf("%q is not a peer of the running configuration", dest)
		}
		h = ph
	}
	// as a call from the PBX would go: a URI of no peer from the first
	// interface other than the PBX's (one-armed: the only one)
	var in *endpoint
	if _, src, err := rt.testSource(""); err == nil {
		in = src
	}
	ep := rt.egress(h, in)
	if ep == nil {
		return nil, errors.New("sip: no interface to send from")
	}
	id, capt, done := newCapture()
	defer done()
	u := hopURI(h)
	out := &PingOutcome{Peer: h.Peer, URI: u.String()}
	defer func() { out.Messages = capt.Messages() }()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	targets, err := rt.resolver.Resolve(rctx, h)
	cancel()
	if err == nil && len(targets) == 0 {
		err = errors.New("no target")
	}
	if err != nil {
		out.Err = fmt.Errorf("resolving %s: %w", h.Host, err)
		return out, nil
	}
	tg := targets[0]
	out.Target = tg.Addr.String()
	info := ep.info.Load()
	tr := tg.Transport
	if tr == "" {
		tr = "udp"
	}
	l := Leg{CallID: id, LocalTag: newID(), Transport: tr,
		LocalURI:  sip.Uri{Scheme: "sip", User: "palisade", Host: info.Host},
		RemoteURI: sip.Uri{Scheme: h.Scheme, User: h.User, Host: h.Host, Port: h.Port}, RemoteTarget: hopURI(h)}
	req := newRequest(sip.OPTIONS, &l, info, rt.maxForwards, 1)
	req.AppendHeader(info.Contact(tr))
	req.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	if rt.userAgent != "" {
		req.AppendHeader(sip.NewHeader("User-Agent", rt.userAgent))
	}
	req.SetBody(nil)
	out.Request = req
	start := time.Now()
	tx, err := ep.request(ctx, req, tg, id)
	if err != nil {
		out.Err = err
		return out, nil
	}
	res, err := finalResponse(ctx, tx)
	out.RTT = time.Since(start)
	if err != nil {
		out.Err = err
		return out, nil
	}
	s.traceIn(id, ep, res)
	out.Response = res
	return out, nil
}
