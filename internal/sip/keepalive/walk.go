package keepalive

import (
	"context"
)

// Attempt is the outcome of one request (an INVITE) to one target, as the
// engine saw it.
type Attempt struct {
	Status int // final status; 0 = none (transport failure, invite_timeout)
	// Provisional: a provisional answer other than 100 arrived (the call
	// rang or had early media there). The search then ends whatever the
	// final answer: trying elsewhere would ring the callee twice
	// (Microsoft's "Trunk failover on outbound calls" fails over only
	// without such answers).
	Provisional bool
	RetryAfter  int // seconds of a 503's Retry-After; 0 = none
	Err         error
}

// MovesOn reports whether the next target is tried after a.
func (a Attempt) MovesOn() bool { return !a.Provisional && MovesOn(a.Status) }

// Walk sends one request to the peer's usable targets in order (try does
// the sending) until an attempt does not move on, reporting every outcome
// (Report) so that later calls skip what this one found dead. It returns
// the last target tried and its attempt; ErrAllDown (at once, nothing
// sent) when no target is usable, so the caller answers 503 without
// waiting. ctx ending stops the walk.
func (m *Monitor) Walk(ctx context.Context, peer string, try func(context.Context, Target) Attempt) (Target, Attempt, error) {
	targets, err := m.NextTargets(ctx, peer)
	if err != nil {
		return Target{}, Attempt{}, err
	}
	var last Target
	var a Attempt
	for _, t := range targets {
		last, a = t, try(ctx, t)
		if ctx.Err() != nil {
			break // the caller gave up: says nothing about the target
		}
		if !(a.Provisional && a.Status == 0) { // it rang: it lives
			m.Report(t, a.Status, secs(a.RetryAfter))
		}
		if !a.MovesOn() {
			break
		}
	}
	return last, a, nil
}
