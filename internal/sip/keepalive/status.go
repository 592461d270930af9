// Package keepalive watches the health of every target of a trunk: OPTIONS
// that a cloud service accepts (Contact with the interface's FQDN, the
// peer's headers such as X-MS-SBC, Allow, User-Agent), one health state per
// resolved address of each of the peer's names, and the ordered list of
// targets a call may use now. It also holds the rules of when a failed
// INVITE moves on to the next target.
//
// Microsoft's "Direct Routing - SIP protocol" page is the model: the SBC
// starts the OPTIONS exchange, the exchange must succeed with 200 OK before
// calls flow, and the Contact of the OPTIONS carries the SBC's FQDN. Any
// trunk gets the same machinery with a looser "up" rule.
//
// The package knows nothing of calls: the B2BUA's engine sends the OPTIONS
// (Sender) and asks NextTargets before each INVITE, and reports what each
// target answered (Report).
package keepalive

import (
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Up rules (config peers[].trunk.keepalive.up).
const (
	UpAny = "any" // every answer but 408 and 5xx: the peer's SIP stack lives
	Up2xx = "2xx" // only success (Teams Direct Routing)
)

// IsUp reports whether an OPTIONS answer with status means "up" under
// rule ("" = UpAny). status 0 stands for no answer at all.
func IsUp(rule string, status int) bool {
	switch {
	case status < 200:
		return false
	case rule == Up2xx:
		return status < 300
	}
	return status != 408 && (status < 500 || status >= 600)
}

// MovesOn reports whether an INVITE that ended with status (0 = transport
// failure or no answer within invite_timeout) is tried at the next target:
// 408, 5xx and no answer move on; 6xx ends the search (RFC 3261 §16.7:
// a 6xx is final for every branch; Microsoft's "Trunk failover on
// outbound calls": a declined call must not ring again elsewhere), and so
// does every other 4xx (the request itself is wrong or the callee said
// no; another target would answer the same). 2xx and 3xx are no failures.
func MovesOn(status int) bool {
	return status == 0 || status == 408 || status >= 500 && status < 600
}

// maxRetryAfter bounds how long one answer can keep a target out: a
// mistaken Retry-After of a day must not silence a trunk for a day.
const maxRetryAfter = time.Hour

// RetryAfter is how long a 503 answer keeps its target out (RFC 3261
// §21.5.4, §20.33): the Retry-After seconds, at most an hour; 0 for any
// other answer or a 503 without a usable Retry-After.
func RetryAfter(res *sip.Response) time.Duration {
	if res == nil || res.StatusCode != 503 {
		return 0
	}
	h := res.GetHeader("Retry-After")
	if h == nil {
		return 0
	}
	return ParseRetryAfter(h.Value())
}

func secs(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, maxRetryAfter)
}

// ParseRetryAfter reads "120", "120 (maintenance)" or "120;duration=60"
// (RFC 3261 §20.33) as a duration; 0 when it is not a number.
func ParseRetryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	end := 0
	for end < len(v) && v[end] >= '0' && v[end] <= '9' {
		end++
	}
	if end == 0 || end > 7 {
		if end > 7 {
			return maxRetryAfter
		}
		return 0
	}
	n, _ := strconv.Atoi(v[:end])
	return min(time.Duration(n)*time.Second, maxRetryAfter)
}
