package b2bua

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// The Service sends the requests of the trunk registration client
// (internal/sip/accounts.Sender): Contact and Do below.

// peerRoute returns the hop, endpoint and interface facts of a peer.
func (s *Service) peerRoute(peer string) (*runtime, routing.Hop, *endpoint, error) {
	rt := s.rt.Load()
	if rt.table == nil {
		return nil, routing.Hop{}, nil, errors.New("sip: not configured")
	}
	hop, ok := rt.table.PeerHop(peer)
	if !ok {
		return nil, routing.Hop{}, nil, fmt.Errorf("sip: no peer named %q", peer)
	}
	ep := rt.egress(hop, nil)
	if ep == nil {
		return nil, routing.Hop{}, nil, fmt.Errorf("sip: no interface to reach peer %q", peer)
	}
	return rt, hop, ep, nil
}

// peerTarget returns the first resolved target of peer (the one Do sends
// to) with the runtime and endpoint that reach it. Answers are cached for
// their TTL, so Contact and the Do that follows agree.
func (s *Service) peerTarget(ctx context.Context, peer string) (*runtime, *endpoint, routing.Target, error) {
	rt, hop, ep, err := s.peerRoute(peer)
	if err != nil {
		return nil, nil, routing.Target{}, err
	}
	targets, err := rt.resolver.Resolve(ctx, hop)
	if err != nil {
		return nil, nil, routing.Target{}, fmt.Errorf("sip: resolving peer %q: %w", peer, err)
	}
	if len(targets) == 0 {
		return nil, nil, routing.Target{}, fmt.Errorf("sip: peer %q resolved to no target", peer)
	}
	return rt, ep, targets[0], nil
}

// Contact is the unit's SIP URI on the interface that reaches peer, for
// the transport the registration will actually use: the peer's configured
// transport, or the one RFC 3263 (NAPTR/SRV) chose for its domain. TCP
// and TLS Contacts carry ;transport=tcp / ;transport=tls and the port of
// that listener, so the trunk sends its calls over the same transport.
func (s *Service) Contact(peer string) (sip.Uri, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, ep, tg, err := s.peerTarget(ctx, peer)
	if err != nil {
		return sip.Uri{}, err
	}
	tr := tg.Transport
	if tr == "" {
		tr = "udp"
	}
	return ep.info.Load().Contact(tr).Address, nil
}

// Do sends req to peer in a new client transaction (first resolved
// target) and returns the final response. Via and Max-Forwards are ours;
// everything else is sent as given (the caller answers challenges).
func (s *Service) Do(ctx context.Context, peer string, req *sip.Request) (*sip.Response, error) {
	rt, ep, tg, err := s.peerTarget(ctx, peer)
	if err != nil {
		return nil, err
	}
	info := ep.info.Load()
	req.RemoveHeader("Via")
	req.PrependHeader(info.Via(tg.Transport))
	if req.MaxForwards() == nil {
		mf := sip.MaxForwardsHeader(rt.maxForwards)
		req.AppendHeader(&mf)
	}
	if rt.userAgent != "" && req.GetHeader("User-Agent") == nil {
		req.AppendHeader(sip.NewHeader("User-Agent", rt.userAgent))
	}
	tx, err := ep.request(ctx, req, tg, "")
	if err != nil {
		return nil, err
	}
	res, err := finalResponse(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("sip: %s to peer %q: %w", req.Method, peer, err)
	}
	return res, nil
}

var errNoFinal = errors.New("no final response")

// finalResponse waits for the final response of a non-INVITE client
// transaction and ends the transaction.
func finalResponse(ctx context.Context, tx *sip.ClientTx) (*sip.Response, error) {
	defer tx.Terminate()
	for {
		select {
		case r := <-tx.Responses():
			if r.StatusCode >= 200 {
				return r, nil
			}
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return nil, err
			}
			return nil, errNoFinal
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
