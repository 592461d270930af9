package b2bua

import (
	"fmt"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/numbers"
	"github.com/palisade-sbc/palisade/internal/sip/trunk"
)

// Number normalisation per peer (config peers[].trunk.numbers): inbound
// rules rewrite what a peer sends before routing sees it, outbound rules
// what the unit sends to a peer. The caller's own leg keeps the numbers it
// sent (its dialog is its own); only the routing decision and the far
// leg's request see the rewritten ones.

// peerNumbers are a peer's compiled rules; nil sets change nothing.
type peerNumbers struct{ out, in *numbers.Set }

// trunkSettings notes the peers' own_allow and history_info settings.
func (rt *runtime) trunkSettings(peers []config.Peer) {
	rt.ownAllow, rt.history = map[string]bool{}, map[string]string{}
	for _, p := range peers {
		rt.ownAllow[p.Name] = p.Trunk.OwnAllow
		rt.history[p.Name] = p.Trunk.HistoryInfo
	}
}

func compileNumbers(peers []config.Peer) (map[string]peerNumbers, error) {
	m := map[string]peerNumbers{}
	for i, p := range peers {
		n := p.Trunk.Numbers
		var pn peerNumbers
		var err error
		if len(n.Outbound) > 0 || n.UserPhone {
			if pn.out, err = numbers.Compile(config.NumberRules(n.Outbound), n.UserPhone); err != nil {
				return nil, fmt.Errorf("peers[%d].trunk.numbers.outbound: %w", i, err)
			}
		}
		if len(n.Inbound) > 0 {
			if pn.in, err = numbers.Compile(config.NumberRules(n.Inbound), false); err != nil {
				return nil, fmt.Errorf("peers[%d].trunk.numbers.inbound: %w", i, err)
			}
		}
		if pn.out != nil || pn.in != nil {
			m[p.Name] = pn
		}
	}
	return m, nil
}

// inbound returns req as routing should see it: a copy with the source
// peer's inbound rules applied, or req itself when it has none.
func (rt *runtime) inbound(peer string, req *sip.Request) *sip.Request {
	set := rt.numbers[peer].in
	if set == nil {
		return req
	}
	c := req.Clone()
	set.Request(c)
	return c
}

// inboundUser is a Request-URI user from peer as routing should see it
// (a transfer's Refer-To number, transfer.go).
func (rt *runtime) inboundUser(peer, user string) string {
	return rt.numbers[peer].in.Number(numbers.RequestURI, user) // nil set: unchanged
}

// numbersOut rewrites the far leg's request: the caller's number (From,
// P-Asserted-Identity) by the source peer's inbound rules (the
// Request-URI has had them before routing), then every number by the
// destination peer's outbound rules.
func (rt *runtime) numbersOut(req *sip.Request, fromPeer, toPeer string) {
	if in := rt.numbers[fromPeer].in; in != nil {
		if f := req.From(); f != nil {
			in.URI(numbers.From, &f.Address)
		}
		rewritePAI(req, in)
	}
	rt.numbers[toPeer].out.Request(req)
}

func rewritePAI(req *sip.Request, set *numbers.Set) {
	hs := req.GetHeaders("P-Asserted-Identity")
	if len(hs) == 0 {
		return
	}
	vals := make([]string, len(hs))
	for i, h := range hs {
		vals[i] = set.Address(numbers.PAI, h.Value())
	}
	req.RemoveHeader("P-Asserted-Identity")
	for _, v := range vals {
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", v))
	}
}

// trunkHeaders applies the destination peer's trunk settings to a request
// sent to it (invite.go, transfer.go): its own Allow instead of the other
// leg's (own_allow) and History-Info by its mode, from the values src (the
// other leg's request; nil: none) carried.
func (rt *runtime) trunkHeaders(req *sip.Request, src *sip.Request, peer string, info *ifaceInfo) {
	if rt.ownAllow[peer] {
		req.RemoveHeader("Allow")
		req.AppendHeader(sip.NewHeader("Allow", trunk.Allow(rt.allowed["REFER"])))
	}
	req.RemoveHeader("History-Info")
	if src == nil {
		return
	}
	var vals []string
	for _, h := range src.GetHeaders("History-Info") {
		vals = append(vals, h.Value())
	}
	for _, v := range trunk.HistoryInfo(trunk.HistoryMode(rt.history[peer], info.hide), vals, info.Host) {
		req.AppendHeader(sip.NewHeader("History-Info", v))
	}
}
