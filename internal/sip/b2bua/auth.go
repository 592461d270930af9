package b2bua

import (
	"context"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/routing"
	"github.com/palisade-sbc/palisade/internal/sip/digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var authAnswers = promauto.NewCounterVec(prometheus.CounterOpts{
	Namespace: "palisade", Subsystem: "sip", Name: "auth_answers_total",
	Help: "Digest challenges of peers, by outcome (answered, unusable).",
}, []string{"outcome"})

// peerCreds maps the peers with auth.username to their credentials: the
// unit answers their 401/407 challenges (RFC 3261 §22.2).
func peerCreds(peers []config.Peer) map[string]digest.Credentials {
	m := make(map[string]digest.Credentials)
	for _, p := range peers {
		if p.Auth.Username != "" {
			m[p.Name] = digest.Credentials{Username: p.Auth.Username, Password: p.Auth.Password, Realm: p.Auth.Realm}
		}
	}
	return m
}

func isChallenge(r *sip.Response) bool {
	return r != nil && (r.StatusCode == 401 || r.StatusCode == 407)
}

// answerable says whether challenge r gets an answer after tries answers
// already sent: the first always; one more when the peer only says our
// nonce expired (stale=true, RFC 7616 §3.3). A plain second challenge
// means wrong credentials and goes back as the failure.
func answerable(r *sip.Response, tries int) bool {
	if !isChallenge(r) || tries >= 2 {
		return false
	}
	if tries == 0 {
		return true
	}
	for _, name := range []string{"WWW-Authenticate", "Proxy-Authenticate"} {
		for _, h := range r.GetHeaders(name) {
			if ch, err := digest.ParseChallenge(h.Value()); err == nil && ch.Stale {
				return true
			}
		}
	}
	return false
}

// authRetry returns the request to send again after res challenged req
// (sent to peer): a copy with a new Via branch, CSeq cseq and the
// Authorization or Proxy-Authorization answering the challenge; Call-ID
// and From tag stay. nil when peer has no credentials or the challenge
// cannot be answered (the challenge is then relayed as the failure).
func (s *Service) authRetry(rt *runtime, peer string, req *sip.Request, res *sip.Response, cseq uint32) *sip.Request {
	cred, ok := rt.creds[peer]
	if !ok || !isChallenge(res) {
		return nil
	}
	out := req.Clone()
	if v := out.Via(); v != nil {
		v.Params.Add("branch", sip.GenerateBranch())
	}
	out.RemoveHeader("CSeq")
	out.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: req.Method})
	if err := s.auth.Authorize(out, res, cred); err != nil {
		authAnswers.WithLabelValues("unusable").Inc()
		s.limited.Warn("auth:"+peer, "challenge not answered", "peer", peer, "method", req.Method, "err", err)
		return nil
	}
	authAnswers.WithLabelValues("answered").Inc()
	return out
}

// requestAuth sends a non-INVITE request to peer and returns its final
// response (nil when none came); a challenge is answered once, the retry
// taking its CSeq from nextCSeq (nil: the request's CSeq + 1).
func (s *Service) requestAuth(ctx context.Context, rt *runtime, ep *endpoint, peer string, req *sip.Request, tg routing.Target, id string, nextCSeq func() uint32) *sip.Response {
	tx, err := ep.request(ctx, req, tg, id)
	if err != nil {
		return nil
	}
	return s.finishAuth(ctx, rt, ep, peer, req, tx, tg, id, nextCSeq)
}

// finishAuth waits for the final response of tx, which carries req; a
// challenge is answered once as in requestAuth.
func (s *Service) finishAuth(ctx context.Context, rt *runtime, ep *endpoint, peer string, req *sip.Request, tx *sip.ClientTx, tg routing.Target, id string, nextCSeq func() uint32) *sip.Response {
	res := waitFinal(tx)
	for tries := 0; answerable(res, tries) && rt.creds[peer].Username != ""; tries++ {
		cseq := req.CSeq().SeqNo + 1
		if nextCSeq != nil {
			cseq = nextCSeq()
		}
		retry := s.authRetry(rt, peer, req, res, cseq)
		if retry == nil {
			break
		}
		s.traceIn(id, ep, res)
		tx, err := ep.request(ctx, retry, tg, id)
		if err != nil {
			return nil
		}
		req, res = retry, waitFinal(tx)
	}
	return res
}
