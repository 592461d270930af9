package web

import (
	"context"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/testkit/browsertest"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/registrar"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
)

// fakeSIP stands in for the SIP subsystem (an admin.PeerStater): only its
// peers' keepalive states.
type fakeSIP struct{ peers []b2bua.PeerState }

func (f fakeSIP) PeerStates() []b2bua.PeerState { return f.peers }

// TestBrowserLiveStatus: the Local Registrar page shows the current
// bindings, the SIP Accounts page the peers' OPTIONS state and since when,
// next to the forms that configure them.
func TestBrowserLiveStatus(t *testing.T) {
	ctx := browser(t)
	var svc *observe.Service
	checked := time.Now().Add(-30 * time.Second)
	u := newTestUnitWith(t, func(env *admin.Env) {
		svc = observe.New(env.Store, nil, nil)
		svc.Sources.Register(observe.StatusSource{Kind: observe.StatusRegistrations, Status: func(context.Context) (any, error) {
			return []registrar.Registration{
				{Kind: "local", AOR: "sip:100@example.com", State: "registered", Contact: "sip:100@10.0.0.31:5060", Source: "10.0.0.31:5060",
					Transport: "udp", Interface: "inside", Q: 1, Expires: time.Now().Add(time.Hour), ExpiresIn: 3600, UserAgent: "baresip"},
				{Kind: "trunk", AOR: "sip:+4687@itsp.example.net", Peer: "itsp", State: "failed", LastError: "403 Forbidden"},
			}, nil
		}})
		env.Live = &admin.Live{Observe: svc, Peers: fakeSIP{peers: []b2bua.PeerState{
			{Name: "itsp", Up: false, Failures: 3, LastCheck: checked, LastError: "no answer to OPTIONS", Keepalive: true},
			{Name: "pbx", Up: true, LastCheck: checked, Keepalive: true},
		}}}
	})
	t.Cleanup(func() { svc.Close() })
	sh := newShots(t)

	sh.run(t, ctx, "live-status",
		logIn(u.srv.URL),
		browsertest.Navigate(u.srv.URL+"/traffic/registrar"),
		waitText("#registrations", "sip:100@10.0.0.31:5060"),
		waitText("#registrations", "403 Forbidden"),
		sh.take("registrar-bindings"),
		browsertest.Navigate(u.srv.URL+"/traffic/accounts"),
		waitText("#peer-status", "no answer to OPTIONS"),
		waitText("#peer-status thead", "Since"),
		waitText("#peer-status tbody", "down"),
		sh.take("accounts-peer-status"),
	)
}
