// Package observe holds what an administrator uses to see the unit at work:
// cleartext SIP traces of both legs, call records, metrics and logging.
package observe

import (
	"net/netip"
	"time"
)

// Direction says whether the unit received or sent a message.
type Direction int

const (
	Received Direction = iota
	Sent
)

// SIPMessage is one SIP message as the unit saw it, in cleartext: after
// decryption when received, before encryption when sent.
type SIPMessage struct {
	CallID    string // the unit's call identifier (shared by both legs)
	Leg       string // interface name of the leg ("inside", "outside", ...)
	Dir       Direction
	Transport string // udp | tcp | tls
	Local     netip.AddrPort
	Remote    netip.AddrPort
	Time      time.Time
	Raw       []byte
	// Owned says Raw was made for this call: the tracer may keep it
	// without copying, and nobody writes to it any more.
	Owned bool
	// Head, when set, is what the SIP stack already parsed of the message
	// (its start line, Call-ID and the users of From and To): the tracer
	// then does not read them from Raw again. Only Method, Status, Reason,
	// CallID, FromUser and ToUser are used; the trace's readers read the
	// rest from Raw when someone looks.
	Head *Head
}

// Tracer receives every SIP message of every traced call. Implementations
// must not block the caller and must copy Raw if they keep it.
type Tracer interface {
	TraceSIP(m SIPMessage)
}

// NopTracer drops everything.
type NopTracer struct{}

// TraceSIP does nothing.
func (NopTracer) TraceSIP(SIPMessage) {}
