package admin

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
)

// The test call tool: the unit itself calls a number (routed by the dial
// plan as a call from a peer) or a SIP URI, holds an answered call for a
// moment, hangs up and shows the outcome with the ladder.
func init() {
	RegisterRoutes(func(rt *Routes) {
		rt.API("POST /api/v1/tools/call", toolsCall)
	})
}

// CallRequest is what to call.
type CallRequest struct {
	Number string `json:"number,omitempty"` // routed by the dial plan
	URI    string `json:"uri,omitempty"`    // called directly
	// Target is a number or a SIP URI (what the CLI passes); Number and
	// URI win when set.
	Target string `json:"target,omitempty"`
	From   string `json:"from,omitempty"`   // source peer; "" = the first PBX peer
	Caller string `json:"caller,omitempty"` // From user; "" = palisade
	// Hold is how long an answered call stays up (default 2 s, at most
	// 1 min); Ring how long each target may ring (default 30 s, at most
	// 2 min).
	Hold time.Duration `json:"hold,omitempty"`
	Ring time.Duration `json:"ring,omitempty"`
}

// CallResult is the outcome of a test call.
type CallResult struct {
	Request  CallRequest       `json:"request"`
	Result   string            `json:"result"` // answered | rejected | timed_out | failed
	Code     int               `json:"code"`
	Reason   string            `json:"reason"`
	Target   string            `json:"target,omitempty"` // transport address that answered or failed last
	Peer     string            `json:"peer,omitempty"`   // its peer
	Source   string            `json:"source"`           // peer or interface routed as from
	Rang     bool              `json:"rang"`
	Answered time.Duration     `json:"answered_after,omitempty"`
	Held     time.Duration     `json:"held,omitempty"`
	CallID   string            `json:"call_id"` // SIP Call-ID of the test call
	Message  string            `json:"message"` // one line for people
	Messages []observe.Message `json:"messages"`
	Names    map[string]string `json:"names,omitempty"` // remote address of a message → its peer
}

// Test call defaults.
const (
	DefaultTestHold = 2 * time.Second
	DefaultTestRing = 30 * time.Second
)

func toolsCall(env *Env, w http.ResponseWriter, r *http.Request) error {
	var req CallRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	res, err := TestCall(env, r, req)
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, res)
}

// TestCall places a test call from the running unit.
func TestCall(env *Env, r *http.Request, req CallRequest) (*CallResult, error) {
	sipSvc, err := sipTools(env)
	if err != nil {
		return nil, err
	}
	req.Target, req.Number, req.URI = strings.TrimSpace(req.Target), strings.TrimSpace(req.Number), strings.TrimSpace(req.URI)
	if req.Number == "" && req.URI == "" {
		if strings.Contains(req.Target, ":") {
			req.URI = req.Target
		} else {
			req.Number = req.Target
		}
	}
	if req.Number == "" && req.URI == "" {
		return nil, Errorf(http.StatusBadRequest, "give the number or the SIP URI to call")
	}
	if req.Number != "" && req.URI != "" {
		return nil, Errorf(http.StatusBadRequest, "give a number or a SIP URI, not both")
	}
	if req.Hold <= 0 {
		req.Hold = DefaultTestHold
	}
	if req.Ring <= 0 {
		req.Ring = DefaultTestRing
	}
	ctx, cancel := context.WithTimeout(r.Context(), req.Hold+req.Ring+time.Minute)
	defer cancel()
	out, err := sipSvc.TestCall(ctx, b2bua.TestCall{Number: req.Number, URI: req.URI, Source: req.From,
		Caller: req.Caller, Hold: req.Hold, Ring: req.Ring})
	if err != nil {
		return nil, Errorf(http.StatusBadRequest, "%s", err)
	}
	res := &CallResult{Request: req, Result: out.Result, Code: out.Code, Reason: out.Reason, Target: out.Target,
		Peer: out.Peer, Source: out.Source, Rang: out.Rang, Answered: out.Answered, Held: out.Held,
		CallID: out.ID, Messages: out.Messages}
	if res.Messages == nil {
		res.Messages = []observe.Message{}
	}
	res.Message = callMessage(res)
	res.Names = remoteNames(env, r, res.Messages)
	return res, nil
}

// callMessage says the outcome in one line.
func callMessage(res *CallResult) string {
	at := res.Target
	if res.Peer != "" {
		at = res.Peer + " (" + res.Target + ")"
	}
	switch res.Result {
	case b2bua.TestAnswered:
		return "answered by " + at + ", held " + res.Held.Round(time.Millisecond).String() + ", then BYE"
	case b2bua.TestRejected:
		return "rejected by " + at + " with " + strconv.Itoa(res.Code) + " " + res.Reason
	case b2bua.TestTimedOut:
		if res.Rang {
			return "no answer from " + at + ": it rang until the unit gave up (CANCEL)"
		}
		return "no response from " + at + ": the INVITE was never answered"
	}
	if at == "" {
		return "failed: " + strconv.Itoa(res.Code) + " " + res.Reason
	}
	return "failed at " + at + ": " + strconv.Itoa(res.Code) + " " + res.Reason
}

// remoteNames names the far ends of msgs after the running configuration's
// peers (the CLI's ladder; the web's is drawn with the same names).
func remoteNames(env *Env, r *http.Request, msgs []observe.Message) map[string]string {
	names := peerNamer(env, r)
	if names == nil {
		return nil
	}
	out := map[string]string{}
	for _, m := range msgs {
		if n := names(m.Remote); n != "" {
			out[m.Remote.String()] = n
		}
	}
	return out
}
