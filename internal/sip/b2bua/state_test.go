package b2bua

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/palisade-sbc/palisade/internal/media"
)

// TestCallStateSerialises: the state of a call in progress survives a JSON
// round trip (what a clustered unit would hand over).
func TestCallStateSerialises(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, nil)
	sess, _ := establish(t, u, pbx, itsp, viaInside(u))
	calls := u.ActiveCalls()
	if len(calls) != 1 {
		t.Fatalf("%d calls", len(calls))
	}
	b, err := json.Marshal(calls[0])
	if err != nil {
		t.Fatal(err)
	}
	var back CallState
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Legs, calls[0].Legs) || back.Phase != PhaseConfirmed {
		t.Fatalf("round trip changed the state:\n%+v\n%+v", calls[0], back)
	}
	if a := back.Legs[media.SideA]; a.CallID != sess.InviteRequest.CallID().Value() || a.RemoteTag == "" || a.LocalTag == "" {
		t.Fatalf("caller leg %+v", a)
	}
	_ = sess.Bye(ctxT(t))
	waitNoCalls(t, u.Service)
}
