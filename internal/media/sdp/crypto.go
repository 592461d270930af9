package sdp

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// SDES crypto suites (RFC 4568, RFC 7714) the relay implements.
const (
	SuiteAES80  = "AES_CM_128_HMAC_SHA1_80"
	SuiteAES32  = "AES_CM_128_HMAC_SHA1_32"
	SuiteGCM128 = "AEAD_AES_128_GCM"
)

// ErrBadCrypto is wrapped by every a=crypto parse error. A bad a=crypto line
// is skipped by the relay (like an unknown suite), it does not fail the SDP.
var ErrBadCrypto = errors.New("bad a=crypto")

// ErrUnknownSuite means the line is well formed but names a suite we do not do.
var ErrUnknownSuite = errors.New("unsupported crypto suite")

// KeyLen returns the master key + master salt length of a suite, or 0 when unknown.
func KeyLen(suite string) int {
	switch suite {
	case SuiteAES80, SuiteAES32:
		return 16 + 14
	case SuiteGCM128:
		return 16 + 12
	}
	return 0
}

// maxLifetime is the largest key lifetime RFC 3711 allows for SRTP (2^48 packets).
const maxLifetime = 1 << 48

// Crypto is one a=crypto attribute with a single inline key.
type Crypto struct {
	Tag      int
	Suite    string
	Key      []byte // master key followed by master salt
	Lifetime uint64 // 0 when not given
	MKI      []byte // nil when not given; big-endian value of MKILen bytes
	Params   []string
}

func badCrypto(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadCrypto, fmt.Sprintf(format, args...))
}

// ParseCrypto reads the value of an a=crypto line (the text after "a=crypto:").
// Lines with several keys, session parameters that change the transform
// (UNENCRYPTED_SRTP, FEC_ORDER, a non-zero KDR, ...), an MKI longer than 4
// bytes, or a lifetime outside 1..2^48 are refused: the relay then skips them
// as RFC 4568 asks for attributes an answerer cannot honour.
func ParseCrypto(v string) (Crypto, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return Crypto{}, badCrypto("%q: want tag, suite and key parameters", v)
	}
	var c Crypto
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > 999999999 || len(f[0]) > 10 {
		return Crypto{}, badCrypto("tag %q is not a number of up to 9 digits", f[0])
	}
	c.Tag = tag
	c.Suite = f[1]
	klen := KeyLen(c.Suite)
	if klen == 0 {
		return c, fmt.Errorf("%w %q", ErrUnknownSuite, c.Suite)
	}
	if strings.Contains(f[2], ";") {
		return c, badCrypto("more than one key in one line is not supported")
	}
	kp, ok := strings.CutPrefix(f[2], "inline:")
	if !ok {
		return c, badCrypto("key method of %q is not inline", f[2])
	}
	parts := strings.Split(kp, "|")
	if len(parts) > 3 {
		return c, badCrypto("too many key parameters")
	}
	key, err := decodeKey(parts[0])
	if err != nil {
		return c, err
	}
	if len(key) != klen {
		return c, badCrypto("%s key is %d bytes, want %d", c.Suite, len(key), klen)
	}
	c.Key = key
	for _, p := range parts[1:] {
		if strings.Contains(p, ":") {
			if c.MKI != nil {
				return c, badCrypto("two MKI parameters")
			}
			mki, err := parseMKI(p)
			if err != nil {
				return c, err
			}
			c.MKI = mki
			continue
		}
		if c.Lifetime != 0 {
			return c, badCrypto("two lifetimes")
		}
		lt, err := parseLifetime(p)
		if err != nil {
			return c, err
		}
		c.Lifetime = lt
	}
	for _, p := range f[3:] {
		if err := checkSessionParam(p); err != nil {
			return c, err
		}
		c.Params = append(c.Params, p)
	}
	return c, nil
}

func decodeKey(s string) ([]byte, error) {
	if len(s) > 128 {
		return nil, badCrypto("key of %d characters is too long", len(s))
	}
	if k, err := base64.StdEncoding.DecodeString(s); err == nil {
		return k, nil
	}
	// Some endpoints leave out the padding.
	k, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, badCrypto("key is not base64")
	}
	return k, nil
}

func parseLifetime(p string) (uint64, error) {
	var lt uint64
	if e, ok := strings.CutPrefix(p, "2^"); ok {
		n, err := strconv.Atoi(e)
		if err != nil || n < 0 || n > 48 {
			return 0, badCrypto("lifetime %q is out of range", p)
		}
		lt = 1 << n
	} else {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return 0, badCrypto("lifetime %q is not a number", p)
		}
		lt = n
	}
	if lt == 0 || lt > maxLifetime {
		return 0, badCrypto("lifetime %q is out of range", p)
	}
	return lt, nil
}

func parseMKI(p string) ([]byte, error) {
	val, ln, _ := strings.Cut(p, ":")
	n, err := strconv.Atoi(ln)
	if err != nil || n < 1 || n > 4 {
		return nil, badCrypto("MKI length %q is not 1 to 4 bytes", ln)
	}
	v, ok := new(big.Int).SetString(val, 10)
	if !ok || v.Sign() < 0 || v.BitLen() > 8*n {
		return nil, badCrypto("MKI value %q does not fit %d bytes", val, n)
	}
	return v.FillBytes(make([]byte, n)), nil
}

// checkSessionParam accepts only the session parameters that do not change
// the SRTP transform we run.
func checkSessionParam(p string) error {
	switch {
	case strings.HasPrefix(p, "WSH="):
		return nil // window size hint: our replay window is larger anyway
	case p == "KDR=0":
		return nil
	}
	return badCrypto("session parameter %q is not supported", p)
}

// String formats the attribute value (without "a=crypto:").
func (c Crypto) String() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(c.Tag))
	b.WriteByte(' ')
	b.WriteString(c.Suite)
	b.WriteString(" inline:")
	b.WriteString(base64.StdEncoding.EncodeToString(c.Key))
	if c.Lifetime != 0 {
		b.WriteString("|")
		b.WriteString(lifetimeString(c.Lifetime))
	}
	if c.MKI != nil {
		v := new(big.Int).SetBytes(c.MKI)
		fmt.Fprintf(&b, "|%s:%d", v.String(), len(c.MKI))
	}
	for _, p := range c.Params {
		b.WriteByte(' ')
		b.WriteString(p)
	}
	return b.String()
}

func lifetimeString(lt uint64) string {
	if lt&(lt-1) == 0 {
		n := 0
		for x := lt; x > 1; x >>= 1 {
			n++
		}
		return "2^" + strconv.Itoa(n)
	}
	return strconv.FormatUint(lt, 10)
}
