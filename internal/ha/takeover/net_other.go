//go:build !linux

package takeover

import (
	"errors"

	"github.com/palisade-sbc/palisade/internal/ha/vip"
)

func newNetlink() (vip.Net, error) {
	return nil, errors.New("ha: floating addresses need Linux (rtnetlink)")
}
