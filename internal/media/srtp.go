package media

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/pion/srtp/v3"

	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

// replayWindow is the SRTP/SRTCP replay window (packets). RFC 3711 asks for
// at least 64; libsrtp uses 128.
const replayWindow = 128

func profileOf(suite string) (srtp.ProtectionProfile, error) {
	switch suite {
	case sdp.SuiteAES80:
		return srtp.ProtectionProfileAes128CmHmacSha1_80, nil
	case sdp.SuiteAES32:
		return srtp.ProtectionProfileAes128CmHmacSha1_32, nil
	case sdp.SuiteGCM128:
		return srtp.ProtectionProfileAeadAes128Gcm, nil
	}
	return 0, fmt.Errorf("suite %q is not supported", suite)
}

// newCrypto makes a fresh key for suite with tag. Keys are never reused:
// every leg and every offer or answer we send gets its own.
func newCrypto(rnd io.Reader, tag int, suite string) (sdp.Crypto, error) {
	key := make([]byte, sdp.KeyLen(suite))
	if _, err := io.ReadFull(rnd, key); err != nil {
		return sdp.Crypto{}, fmt.Errorf("media: random key: %w", err)
	}
	return sdp.Crypto{Tag: tag, Suite: suite, Key: key}, nil
}

// newContext builds an SRTP context for one direction of one leg. Replay
// protection is switched on explicitly (pion leaves it off by default).
func newContext(c sdp.Crypto) (*srtp.Context, error) {
	prof, err := profileOf(c.Suite)
	if err != nil {
		return nil, err
	}
	kl, err := prof.KeyLen()
	if err != nil {
		return nil, err
	}
	opts := []srtp.ContextOption{
		srtp.SRTPReplayProtection(replayWindow),
		srtp.SRTCPReplayProtection(replayWindow),
	}
	if c.MKI != nil {
		opts = append(opts, srtp.MasterKeyIndicator(c.MKI))
	}
	ctx, err := srtp.CreateContext(c.Key[:kl], c.Key[kl:], prof, opts...)
	if err != nil {
		return nil, fmt.Errorf("media: SRTP context for %s: %w", c.Suite, err)
	}
	return ctx, nil
}

// rtcpCtx is an SRTCP context. RTCP of a leg may be handled by the RTP
// socket's reader (rtcp-mux) or the RTCP socket's reader, and that can change
// with a re-INVITE, so it has its own small lock (per leg, never shared by
// calls; RTCP is a few packets per second).
type rtcpCtx struct {
	mu  sync.Mutex
	ctx *srtp.Context
	// floor is where the outbound index of an SSRC new to a restored
	// context starts (restoreCrypt); 0: at the beginning.
	floor uint32
}

// encrypt protects an RTCP packet b in place and returns it with the index
// it was sent under.
func (rc *rtcpCtx) encrypt(b []byte) ([]byte, uint32, error) {
	ssrc := binary.BigEndian.Uint32(b[4:8])
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.floor != 0 {
		if _, ok := rc.ctx.Index(ssrc); !ok {
			rc.ctx.SetIndex(ssrc, rc.floor)
		}
	}
	p, err := rc.ctx.EncryptRTCP(b, b, nil)
	idx, _ := rc.ctx.Index(ssrc)
	return p, idx, err
}

// crypt is the SRTP state of one direction of one leg: an RTP context used
// only by one reader goroutine, and an SRTCP context.
type crypt struct {
	c    sdp.Crypto
	rtp  *srtp.Context
	rtcp *rtcpCtx
	// unproven: the inbound SSRCs of a restored call whose rollover
	// counter no packet has confirmed yet (restore.go: decryptRestored).
	// Owned by the leg's worker; nil once all are confirmed.
	unproven map[uint32]bool
}

func newCrypt(c sdp.Crypto) (*crypt, error) {
	a, err := newContext(c)
	if err != nil {
		return nil, err
	}
	b, err := newContext(c)
	if err != nil {
		return nil, err
	}
	return &crypt{c: c, rtp: a, rtcp: &rtcpCtx{ctx: b}}, nil
}

// sameKey reports whether c already runs crypto k (a re-offer that kept its
// key must keep the rollover and replay state).
func (c *crypt) sameKey(k sdp.Crypto) bool {
	return c != nil && c.c.Suite == k.Suite && string(c.c.Key) == string(k.Key) && string(c.c.MKI) == string(k.MKI)
}
