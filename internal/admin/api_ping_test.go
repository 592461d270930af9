package admin

import "github.com/palisade-sbc/palisade/internal/sip/b2bua"

// The SIP subsystem offers what the ping tool uses.
var _ SIPRequester = (*b2bua.Service)(nil)
