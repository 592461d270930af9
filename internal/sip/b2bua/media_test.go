package b2bua

import (
	"errors"
	"strings"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/media"
)

// failingMedia refuses every offer with err.
type failingMedia struct{ err error }

func (f failingMedia) NewCall(string, media.Leg, media.Leg) (media.Call, error) {
	return failingCall{f.err}, nil
}

type failingCall struct{ err error }

func (f failingCall) Offer(media.Side, []byte) ([]byte, error)  { return nil, f.err }
func (f failingCall) Answer(media.Side, []byte) ([]byte, error) { return nil, f.err }
func (failingCall) OnInactive(func())                           {}
func (failingCall) Stats() media.CallStats                      { return media.CallStats{} }
func (failingCall) Close()                                      {}

func TestMediaErrorsMapToSIP(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{media.ErrNotAcceptable, 488},
		{media.ErrNoPorts, 503},
		{media.ErrBadSDP, 400},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			pbx, itsp := newUDPPeers(t)
			u := newTestUnitWith(t, pbx, itsp, Deps{Media: failingMedia{tc.err}}, nil)
			ctx := ctxT(t)
			in := u.inside()
			sess, err := pbx.DC.Invite(ctx, uriAt(in, "1"),
				testSDP("127.0.0.1", 7000), sip.NewHeader("Content-Type", "application/sdp"))
			if err != nil {
				t.Fatal(err)
			}
			err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{})
			var de *sipgo.ErrDialogResponse
			if !errors.As(err, &de) || de.Res.StatusCode != tc.code {
				t.Fatalf("got %v, want %d", err, tc.code)
			}
			if n := itsp.Wire.Count("INVITE "); n != 0 {
				t.Fatalf("the refused offer still went out (%d INVITEs)", n)
			}
		})
	}
}

func TestSessionTimerHeadersPass(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, nil)
	ctx := ctxT(t)
	in := u.inside()
	sess, err := pbx.DC.Invite(ctx, uriAt(in, "1"),
		testSDP("127.0.0.1", 7000), sip.NewHeader("Content-Type", "application/sdp"),
		sip.NewHeader("Session-Expires", "1800;refresher=uac"), sip.NewHeader("Min-SE", "90"), sip.NewHeader("Supported", "timer"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	inv := itsp.Next(sip.INVITE)
	for name, want := range map[string]string{"Session-Expires": "1800;refresher=uac", "Min-SE": "90", "Supported": "timer"} {
		if h := inv.GetHeader(name); h == nil || !strings.Contains(h.Value(), want) {
			t.Errorf("%s not passed: %v", name, h)
		}
	}
	_ = sess.Ack(ctx)
	_ = sess.Bye(ctx)
	waitNoCalls(t, u.Service)
}
