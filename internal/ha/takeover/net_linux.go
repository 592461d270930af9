package takeover

import "github.com/palisade-sbc/palisade/internal/ha/vip"

func newNetlink() (vip.Net, error) { return vip.NewNetlink("") }
