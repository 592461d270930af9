package b2bua

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/observe"
)

// trace hands one message of a call to the tracer, in cleartext (what we
// write before TLS encrypts it, what we read after TLS decrypted it).
func (s *Service) trace(callID string, ep *endpoint, dir observe.Direction, m sip.Message, remote netip.AddrPort) {
	rt := s.rt.Load()
	if !rt.traceOn {
		return
	}
	if _, nop := s.deps.Tracer.(observe.NopTracer); nop {
		return
	}
	tr := strings.ToLower(m.Transport())
	info := ep.info.Load()
	local := netip.AddrPortFrom(info.addr, uint16(info.port(tr)))
	var raw string
	switch v := m.(type) {
	case *sip.Request:
		raw = v.String()
	case *sip.Response:
		raw = v.String()
	}
	s.deps.Tracer.TraceSIP(observe.SIPMessage{
		CallID: callID, Leg: ep.name, Dir: dir, Transport: tr,
		Local: local, Remote: remote, Time: time.Now(), Raw: []byte(raw),
	})
}

// traceIn traces a received message; its remote address is its source.
func (s *Service) traceIn(callID string, ep *endpoint, m sip.Message) {
	ap, _ := netip.ParseAddrPort(m.Source())
	s.trace(callID, ep, observe.Received, m, ap)
}

// sipgoLogHandler receives sipgo's own log lines. Unparseable input is
// counted and logged at a bounded rate (sipgo would log every datagram with
// its full text); everything else goes to debug, rate limited as well.
type sipgoLogHandler struct {
	svc   *Service
	attrs []slog.Attr
}

func (h *sipgoLogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *sipgoLogHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "failed to parse" {
		badInput.WithLabelValues("unparseable").Inc()
		var errText string
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "error" {
				errText = a.Value.String()
			}
			return true
		})
		h.svc.limited.Warn("sip-unparseable", "unparseable SIP message dropped", "err", errText)
		return nil
	}
	if r.Level >= slog.LevelWarn {
		h.svc.limited.Warn("sipgo:"+r.Message, "sip stack: "+r.Message)
	}
	return nil
}

func (h *sipgoLogHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return &sipgoLogHandler{svc: h.svc, attrs: append(append([]slog.Attr(nil), h.attrs...), a...)}
}

func (h *sipgoLogHandler) WithGroup(string) slog.Handler { return h }
