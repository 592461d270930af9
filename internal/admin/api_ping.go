package admin

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
)

// The OPTIONS ping tool: the unit sends one OPTIONS to a configured peer
// (the way it sends its keepalives) or to a SIP URI and shows the answer
// and both messages as a ladder.
func init() {
	RegisterRoutes(func(rt *Routes) {
		rt.API("POST /api/v1/tools/ping", toolsPing)
	})
}

// SIPRequester is what the tools need of the SIP subsystem: an OPTIONS and
// a test call placed by the unit itself, each with its ladder.
type SIPRequester interface {
	Ping(ctx context.Context, dest string) (*b2bua.PingOutcome, error)
	TestCall(ctx context.Context, tc b2bua.TestCall) (*b2bua.TestCallResult, error)
}

// PingRequest names the peer or the SIP URI to ping.
type PingRequest struct {
	Peer string `json:"peer,omitempty"` // a peer name, or a SIP URI
	URI  string `json:"uri,omitempty"`  // sip:host[:port][;transport=udp|tcp|tls]
}

// PingResult is the outcome of one OPTIONS.
type PingResult struct {
	Peer     string            `json:"peer,omitempty"` // the peer pinged, or the one at the URI's address
	URI      string            `json:"uri"`            // the Request-URI
	Target   string            `json:"target,omitempty"`
	OK       bool              `json:"ok"` // a final answer came (any status: the peer is alive)
	Code     int               `json:"code,omitempty"`
	Reason   string            `json:"reason,omitempty"`
	RTT      time.Duration     `json:"rtt"`
	Server   string            `json:"server,omitempty"` // Server or User-Agent of the answer
	Allow    string            `json:"allow,omitempty"`
	Error    string            `json:"error,omitempty"`
	Request  string            `json:"request"`            // the OPTIONS as sent
	Response string            `json:"response,omitempty"` // the answer
	Messages []observe.Message `json:"messages"`           // the ladder
	Names    map[string]string `json:"names,omitempty"`    // remote address of a message → its peer
}

// Name is the peer's name, else the URI (for the messages shown).
func (p *PingResult) Name() string {
	if p.Peer != "" {
		return p.Peer
	}
	return p.URI
}

// pingTimeout bounds one ping (the SIP transaction gives up after 32 s).
const pingTimeout = 35 * time.Second

func toolsPing(env *Env, w http.ResponseWriter, r *http.Request) error {
	var req PingRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	dest := req.Peer
	if req.URI != "" {
		dest = req.URI
	}
	res, err := Ping(env, r, dest)
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, res)
}

// sipTools is the running unit's SIP subsystem for the tools.
func sipTools(env *Env) (SIPRequester, error) {
	if !env.Running() {
		return nil, ErrUnitStopped
	}
	if env.Live == nil || env.Live.SIP == nil {
		return nil, Errorf(http.StatusServiceUnavailable, "the SIP subsystem of this unit cannot send requests of its own")
	}
	return env.Live.SIP, nil
}

// Ping sends one OPTIONS to dest: the name of a configured peer or a SIP URI.
func Ping(env *Env, r *http.Request, dest string) (*PingResult, error) {
	sipSvc, err := sipTools(env)
	if err != nil {
		return nil, err
	}
	dest = strings.TrimSpace(dest)
	if dest == "" {
		return nil, Errorf(http.StatusBadRequest, "give a peer name or a SIP URI to ping")
	}
	ctx, cancel := context.WithTimeout(r.Context(), pingTimeout)
	defer cancel()
	out, err := sipSvc.Ping(ctx, dest)
	if err != nil {
		return nil, Errorf(http.StatusBadRequest, "%s (SIP Traffic → SIP Accounts lists the peers)", err)
	}
	res := &PingResult{Peer: out.Peer, URI: out.URI, Target: out.Target, RTT: out.RTT, Messages: out.Messages}
	if res.Messages == nil {
		res.Messages = []observe.Message{}
	}
	res.Names = remoteNames(env, r, res.Messages)
	if out.Request != nil {
		res.Request = out.Request.String()
	}
	if out.Err != nil {
		res.Error = out.Err.Error()
		if errors.Is(out.Err, context.DeadlineExceeded) {
			res.Error = "no answer within " + pingTimeout.String()
		}
		return res, nil
	}
	ans := out.Response
	res.OK, res.Code, res.Reason, res.Response = true, ans.StatusCode, ans.Reason, ans.String()
	for _, h := range []string{"Server", "User-Agent"} {
		if v := ans.GetHeader(h); v != nil && res.Server == "" {
			res.Server = v.Value()
		}
	}
	if v := ans.GetHeader("Allow"); v != nil {
		res.Allow = v.Value()
	}
	return res, nil
}

// LadderSVG draws msgs as the call ladder, its outer lanes named after the
// running configuration's peers (the web admin shows the tools' ladders).
func LadderSVG(env *Env, r *http.Request, title string, msgs []observe.Message) (string, error) {
	var b bytes.Buffer
	if err := observe.WriteLadderNamed(&b, title, msgs, peerNamer(env, r)); err != nil {
		return "", err
	}
	return b.String(), nil
}
