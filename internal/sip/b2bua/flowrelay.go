package b2bua

import (
	"errors"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// route returns the hops of a dialog-creating or standalone request: the
// routing table's, or, for a request another unit of the cluster relayed
// here with routing.FlowHeader, the one binding its token names (the
// registrar's FlowHops), so a relayed call never goes through the routing
// table a second time and cannot bounce back.
func (s *Service) route(rt *runtime, rr routing.Request, req *sip.Request) ([]routing.Hop, error) {
	h := req.GetHeader(routing.FlowHeader)
	if h == nil {
		return rt.table.Route(rr, s.peers.isUp)
	}
	if s.deps.Registrar == nil {
		return nil, &sipError{403, "Forbidden (relayed call without a registrar)"}
	}
	hops, err := s.deps.Registrar.FlowHops(h.Value())
	switch {
	case errors.Is(err, routing.ErrNoRoute):
		return nil, &sipError{480, "Temporarily Unavailable (the phone's registration moved or ended)"}
	case err != nil:
		badInput.WithLabelValues("bad_flow_token").Inc()
		s.limited.Warn("flow-token", "refusing a relayed request with an invalid cluster flow token",
			"source", req.Source(), "err", err)
		return nil, &sipError{403, "Forbidden (invalid cluster flow token)"}
	}
	return hops, nil
}
