package b2bua

import (
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Rehome mode (ha.mode "rehome", docs/ha.md): where addresses cannot move
// between units, the unit that carries on a dead unit's calls moves them
// to its own addresses. Each party is re-INVITEd with this unit's Contact:
// the caller first without SDP (its offer), which goes in a re-INVITE to
// the callee, whose answer returns to the caller in the ACK (RFC 3725
// §4.1, as after a transfer). The media is relayed on new ports here.

var callsRehomed = promauto.NewCounter(prometheus.CounterOpts{
	Namespace: "palisade", Subsystem: "sip", Name: "calls_rehomed_total",
	Help: "Calls of a dead unit this unit carried on by re-INVITEs to its own addresses (ha.mode rehome).",
})

// Rehome carries on the call of a record on this unit's own addresses: the
// dialogs go into the call map (local CSeqs cseqJump above the recorded
// ones), a new media session is set up, and both parties are re-INVITEd in
// the background; a call whose re-INVITEs fail is ended (BYE). The record
// is written again as this unit's once both parties are here.
func (s *Service) Rehome(b []byte) (string, error) {
	r, _, rt, eps, err := s.adoptable(b)
	if err != nil {
		return "", err
	}
	st := r.Call
	la, lb := mediaLegs(media.SideA, eps[media.SideA], st.Legs[media.SideA].Peer, eps[media.SideB], st.Legs[media.SideB].Peer)
	mc, err := s.newMedia(st.ID, la, lb)
	if err != nil {
		return "", err
	}
	c := s.carry(rt, st, eps, mc)
	callsRehomed.Inc()
	c.logger().Info("call rehomed from another unit; re-INVITEs follow", "unit", r.Unit, "written", r.Written)
	go func() {
		if err := c.resyncMedia(media.SideA); err != nil {
			c.logger().Warn("rehomed call ended: its parties could not be moved here", "err", err)
			c.hangup("rehome failed")
			return
		}
		c.persist()
	}()
	return st.ID, nil
}
