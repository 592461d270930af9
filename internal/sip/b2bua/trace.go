package b2bua

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/sip/transport"
)

// trace hands one message of a call to the tracer, in cleartext (what we
// write before TLS encrypts it, what we read after TLS decrypted it).
func (s *Service) trace(callID string, ep *endpoint, dir observe.Direction, m sip.Message, remote netip.AddrPort) {
	capt, tools := captureOf(callID) // a tools exchange (testcall.go): its own ladder only
	if capt == nil && (tools || !s.tracing()) {
		return
	}
	tr := lowerTransport(m.Transport())
	info := ep.info.Load()
	local := netip.AddrPortFrom(info.addr, uint16(info.Port(tr)))
	var raw []byte
	if dir == observe.Received {
		raw = ep.Raw(m) // the datagram as read (UDP)
	}
	if raw == nil {
		raw = transport.Serialize(m)
	}
	msg := observe.SIPMessage{
		CallID: callID, Leg: ep.name, Dir: dir, Transport: tr,
		Local: local, Remote: remote, Time: time.Now(), Raw: raw, Owned: true, Head: headOf(m),
	}
	if capt != nil {
		capt.TraceSIP(msg)
		return
	}
	s.deps.Tracer.TraceSIP(msg)
}

// headOf is what the trace store would read from the message's text,
// taken from what sipgo parsed already (reading it again was a tenth of
// tracing's cost under load, bench/sip/RESULTS.md run 9).
func headOf(m sip.Message) *observe.Head {
	h := new(observe.Head)
	switch v := m.(type) {
	case *sip.Request:
		h.Method = string(v.Method)
	case *sip.Response:
		h.Status, h.Reason = v.StatusCode, v.Reason
		if cs := v.CSeq(); cs != nil {
			h.Method = strings.ToUpper(string(cs.MethodName))
		}
	default:
		return nil
	}
	if cs := m.CSeq(); cs != nil {
		h.CSeq = cs.SeqNo
	}
	if id := m.CallID(); id != nil {
		h.CallID = id.Value()
	}
	if f := m.From(); f != nil {
		h.FromUser = f.Address.User
	}
	if t := m.To(); t != nil {
		h.ToUser = t.Address.User
	}
	return h
}

// lowerTransport is strings.ToLower without an allocation per traced
// message for the names sipgo uses.
func lowerTransport(t string) string {
	switch t {
	case "UDP":
		return "udp"
	case "TCP":
		return "tcp"
	case "TLS":
		return "tls"
	case "WS":
		return "ws"
	case "WSS":
		return "wss"
	}
	return strings.ToLower(t)
}

// tracing says whether messages are traced at all.
func (s *Service) tracing() bool {
	if !s.rt.Load().traceOn {
		return false
	}
	_, nop := s.deps.Tracer.(observe.NopTracer)
	return !nop
}

// traceIn traces a received message; its remote address is its source.
func (s *Service) traceIn(callID string, ep *endpoint, m sip.Message) {
	ap, _ := netip.ParseAddrPort(m.Source())
	s.trace(callID, ep, observe.Received, m, ap)
}

// traceCancelAnswers traces what sipgo sends on its own when the caller
// cancels the INVITE inv: the 200 to the CANCEL (already written when the
// cancel hook runs) and the 487 to the INVITE (written right after it).
// Both are built from the requests exactly as sipgo builds them.
func (s *Service) traceCancelAnswers(callID string, ep *endpoint, cancel, inv *sip.Request) {
	if !s.tracing() {
		return
	}
	for _, res := range []*sip.Response{
		sip.NewResponseFromRequest(cancel, 200, "OK", nil),
		sip.NewResponseFromRequest(inv, 487, "Request Terminated", nil),
	} {
		ap, _ := netip.ParseAddrPort(res.Destination())
		s.trace(callID, ep, observe.Sent, res, ap)
	}
}

// stackSvc is the first Service made: sipgo's package-level logger, set
// once at init (sipgo goroutines read it without a lock, so it is never
// written after they may have started), reports through it.
var stackSvc atomic.Pointer[Service]

func init() { sip.SetDefaultLogger(slog.New(&sipgoLogHandler{})) }

// sipgoLogHandler receives sipgo's own log lines. Unparseable input is
// counted and logged at a bounded rate (sipgo would log every datagram with
// its full text); everything else goes to debug, rate limited as well.
type sipgoLogHandler struct {
	svc   *Service
	attrs []slog.Attr
}

func (h *sipgoLogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *sipgoLogHandler) Handle(_ context.Context, r slog.Record) error {
	svc := h.svc
	if svc == nil {
		if svc = stackSvc.Load(); svc == nil {
			return nil
		}
	}
	if r.Message == "failed to parse" {
		badInput.WithLabelValues("unparseable").Inc()
		var errText string
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "error" {
				errText = a.Value.String()
			}
			return true
		})
		svc.limited.Warn("sip-unparseable", "unparseable SIP message dropped", "err", errText)
		return nil
	}
	if r.Level >= slog.LevelWarn {
		svc.limited.Warn("sipgo:"+r.Message, "sip stack: "+r.Message)
	}
	return nil
}

func (h *sipgoLogHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return &sipgoLogHandler{svc: h.svc, attrs: append(append([]slog.Attr(nil), h.attrs...), a...)}
}

func (h *sipgoLogHandler) WithGroup(string) slog.Handler { return h }
