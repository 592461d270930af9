package observe

import (
	"bytes"
	"slices"
	"sync"
)

// Capture keeps the SIP messages of one exchange the unit starts on its own
// (a test call or an OPTIONS ping from the tools): its ladder is the
// result shown to the administrator, not a call of the trace buffer.
type Capture struct {
	mu   sync.Mutex
	msgs []tracedMsg
}

// TraceSIP keeps m (Raw copied unless owned).
func (c *Capture) TraceSIP(m SIPMessage) {
	if !m.Owned {
		m.Raw = bytes.Clone(m.Raw)
	}
	tm := newTracedMsg(m)
	c.mu.Lock()
	c.msgs = append(c.msgs, tm)
	c.mu.Unlock()
}

// Messages returns what was captured in time order, as Traces.Messages
// gives a call's messages.
func (c *Capture) Messages() []Message {
	c.mu.Lock()
	msgs := slices.Clone(c.msgs)
	c.mu.Unlock()
	return toMessages(msgs)
}
