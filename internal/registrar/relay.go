package registrar

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// A call for a phone whose flow another unit of the cluster holds (the
// unit that took its REGISTER: the phone's TCP/TLS connection ends there,
// its NAT lets in only what comes from there) goes through that unit. The
// hop is the holding unit's listener on the binding's interface, with
// routing.FlowHeader carrying a token that names the binding, signed with
// the cluster's shared secret; the holding unit sends the call to that
// binding only (FlowHops), so a relayed call never bounces between units.

// ErrBadFlowToken is a flow token that is not the cluster's (forged,
// damaged, or signed with another secret).
var ErrBadFlowToken = errors.New("registrar: the cluster flow token is not valid")

// relayTarget is where a unit takes calls relayed to it, on one interface.
type relayTarget struct {
	host      string
	port      int
	transport string // tcp | udp
}

// unitRelays lists, for every unit of cfg's units section and each of its
// interfaces, the listener other units relay calls to: TCP when there is
// one (an INVITE may exceed a datagram), else UDP; TLS-only interfaces and
// unspecified addresses have none.
func unitRelays(cfg *config.Config) map[string]map[string]relayTarget {
	out := map[string]map[string]relayTarget{}
	for name := range cfg.Units {
		uc, err := cfg.ForUnit(name)
		if err != nil {
			continue
		}
		addrs := map[string]string{}
		for _, ifc := range uc.Network.Interfaces {
			if a, err := netip.ParseAddr(ifc.Address); err == nil && !a.IsUnspecified() {
				addrs[ifc.Name] = a.String()
			}
		}
		m := map[string]relayTarget{}
		for _, l := range uc.SIP.Listeners {
			tp := strings.ToLower(l.Transport)
			if addrs[l.Interface] == "" || l.Port == 0 || (tp != "tcp" && tp != "udp") {
				continue
			}
			if cur, ok := m[l.Interface]; ok && cur.transport == "tcp" {
				continue
			}
			m[l.Interface] = relayTarget{host: addrs[l.Interface], port: l.Port, transport: tp}
		}
		out[name] = m
	}
	return out
}

// relayed reports whether b's flow is held by another unit.
func (r *Registrar) relayed(b Binding) bool { return r.unit != "" && b.Unit != "" && b.Unit != r.unit }

// relayHop is the hop through the unit holding b's flow; false when that
// unit has no relay listener on the binding's interface (the call then
// goes to the phone directly, which works only for a phone reachable from
// this unit).
func (r *Registrar) relayHop(s *settings, aor string, b Binding) (routing.Hop, bool) {
	tg, ok := s.relays[b.Unit][b.Interface]
	key := r.flowKey.Load()
	if !ok || key == nil {
		r.limited.Warn("relay", "no listener of the unit holding the phone's flow to relay the call to; sending directly",
			"aor", aor, "unit", b.Unit, "interface", b.Interface)
		return routing.Hop{}, false
	}
	var u sip.Uri
	if err := sip.ParseUri(b.Contact, &u); err != nil {
		return routing.Hop{}, false
	}
	return routing.Hop{Step: "registrar", Rule: "via unit " + b.Unit, Interface: b.Interface, Scheme: "sip",
		User: u.User, Host: tg.host, Port: tg.port, Transport: tg.transport,
		Headers: map[string]string{routing.FlowHeader: flowToken(*key, aor, b.Contact)}}, true
}

// FlowHops is where a call relayed by another unit with token goes: the
// binding the token names, which this unit holds. ErrBadFlowToken for a
// token not signed with the cluster's secret; routing.ErrNoRoute when the
// binding is gone (expired, unregistered, or taken over by another unit).
func (r *Registrar) FlowHops(token string) ([]routing.Hop, error) {
	key := r.flowKey.Load()
	if key == nil {
		return nil, ErrBadFlowToken
	}
	aor, contact, ok := parseFlowToken(*key, token)
	if !ok {
		return nil, ErrBadFlowToken
	}
	r.mu.Lock()
	bs := live(r.bindings[aor], r.now())
	r.mu.Unlock()
	for _, b := range bs {
		if b.Contact == contact && !r.relayed(b) {
			if h, ok := b.hop(); ok {
				return []routing.Hop{h}, nil
			}
		}
	}
	return nil, fmt.Errorf("relayed call for %s: binding %s not held here: %w", aor, contact, routing.ErrNoRoute)
}

var b64 = base64.RawURLEncoding

func flowMAC(key []byte, aor, contact string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("palisade-flow\x00" + aor + "\x00" + contact))
	return m.Sum(nil)[:16]
}

// flowToken is aor, contact and their MAC, each base64url, dot-separated.
func flowToken(key []byte, aor, contact string) string {
	return b64.EncodeToString([]byte(aor)) + "." + b64.EncodeToString([]byte(contact)) + "." +
		b64.EncodeToString(flowMAC(key, aor, contact))
}

func parseFlowToken(key []byte, tok string) (aor, contact string, ok bool) {
	parts := strings.Split(strings.TrimSpace(tok), ".")
	if len(parts) != 3 || len(tok) > 4096 {
		return "", "", false
	}
	a, err1 := b64.DecodeString(parts[0])
	c, err2 := b64.DecodeString(parts[1])
	mac, err3 := b64.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || !hmac.Equal(mac, flowMAC(key, string(a), string(c))) {
		return "", "", false
	}
	return string(a), string(c), true
}
