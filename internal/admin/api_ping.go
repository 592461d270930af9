package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/palisade-sbc/palisade/internal/config"
)

// The OPTIONS ping tool: the unit sends one OPTIONS to a configured peer
// the way it sends its keepalives and shows the answer and both messages.
func init() {
	RegisterRoutes(func(rt *Routes) {
		rt.API("POST /api/v1/tools/ping", toolsPing)
	})
}

// SIPRequester is what the ping needs of the SIP subsystem: the unit's
// Contact towards a peer and one request sent to it in a new client
// transaction (the SIP subsystem offers both for the trunk registrations).
type SIPRequester interface {
	Contact(peer string) (sip.Uri, error)
	Do(ctx context.Context, peer string, req *sip.Request) (*sip.Response, error)
}

// PingRequest names the peer to ping.
type PingRequest struct {
	Peer string `json:"peer"`
}

// PingResult is the outcome of one OPTIONS.
type PingResult struct {
	Peer     string        `json:"peer"`
	OK       bool          `json:"ok"` // a final answer came (any status: the peer is alive)
	Code     int           `json:"code,omitempty"`
	Reason   string        `json:"reason,omitempty"`
	RTT      time.Duration `json:"rtt"`
	Server   string        `json:"server,omitempty"` // Server or User-Agent of the answer
	Allow    string        `json:"allow,omitempty"`
	Error    string        `json:"error,omitempty"`
	Request  string        `json:"request"`            // the OPTIONS as sent
	Response string        `json:"response,omitempty"` // the answer
}

// pingTimeout bounds one ping (the SIP transaction gives up after 32 s).
const pingTimeout = 35 * time.Second

func toolsPing(env *Env, w http.ResponseWriter, r *http.Request) error {
	var req PingRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	res, err := Ping(env, r, req.Peer)
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, res)
}

// Ping sends one OPTIONS to the configured peer name.
func Ping(env *Env, r *http.Request, peer string) (*PingResult, error) {
	if !env.Running() {
		return nil, ErrUnitStopped
	}
	sipSvc := env.Live.SIP
	if sipSvc == nil {
		return nil, Errorf(http.StatusServiceUnavailable, "the SIP subsystem of this unit cannot send a ping")
	}
	cfg, err := env.Config.Running(r.Context())
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(cfg.Peers, func(p config.Peer) bool { return p.Name == peer })
	if i < 0 {
		return nil, Errorf(http.StatusBadRequest, "%q is not a peer of the running configuration (SIP Traffic → SIP Accounts)", peer)
	}
	p := cfg.Peers[i]
	target := sip.Uri{Scheme: "sip", Host: p.Domain}
	if p.Address != "" {
		host, port, err := net.SplitHostPort(p.Address)
		if err != nil {
			host = p.Address
		}
		target.Host = host
		target.Port, _ = strconv.Atoi(port)
	}
	res := &PingResult{Peer: peer}
	contact, err := sipSvc.Contact(peer)
	if err != nil {
		res.Error = err.Error()
		return res, nil
	}
	req := sip.NewRequest(sip.OPTIONS, target)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "palisade", Host: contact.Host}, Params: sip.NewParams()}
	from.Params.Add("tag", randomHex(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: target, Params: sip.NewParams()})
	cid := sip.CallIDHeader(randomHex(16) + "@palisade")
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.OPTIONS})
	req.AppendHeader(&sip.ContactHeader{Address: contact})
	req.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	req.SetBody(nil)
	res.Request = req.String()
	ctx, cancel := context.WithTimeout(r.Context(), pingTimeout)
	defer cancel()
	start := time.Now()
	ans, err := sipSvc.Do(ctx, peer, req)
	res.RTT = time.Since(start)
	res.Request = req.String() // now with the Via the SIP layer added
	if err != nil {
		res.Error = err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			res.Error = "no answer within " + pingTimeout.String()
		}
		return res, nil
	}
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

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
