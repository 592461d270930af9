package sdp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

const rfcKey = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz" // 30 bytes, RFC 4568 example

func TestParseCryptoGood(t *testing.T) {
	cases := []struct {
		in       string
		lifetime uint64
		mki      []byte
		suite    string
	}{
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey, 0, nil, SuiteAES80},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|2^20|1:4", 1 << 20, []byte{0, 0, 0, 1}, SuiteAES80},
		{"2 AES_CM_128_HMAC_SHA1_32 inline:" + rfcKey + "|1066:2", 0, []byte{4, 42}, SuiteAES32},
		{"3 AES_CM_128_HMAC_SHA1_32 inline:" + rfcKey + "|1000000 WSH=64", 1000000, nil, SuiteAES32},
		{"4 AEAD_AES_128_GCM inline:" + strings.Repeat("A", 38) + "==", 0, nil, SuiteGCM128},
		{"5 AEAD_AES_128_GCM inline:" + strings.Repeat("A", 38), 0, nil, SuiteGCM128}, // no padding
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseCrypto(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Suite != c.suite || got.Lifetime != c.lifetime || !bytes.Equal(got.MKI, c.mki) || len(got.Key) != KeyLen(c.suite) {
				t.Fatalf("got %+v", got)
			}
			again, err := ParseCrypto(got.String())
			if err != nil || again.String() != got.String() {
				t.Fatalf("String() does not round trip: %q %v", got.String(), err)
			}
		})
	}
}

func TestParseCryptoBad(t *testing.T) {
	cases := map[string]string{
		"missing key":     "1 AES_CM_128_HMAC_SHA1_80",
		"empty key":       "1 AES_CM_128_HMAC_SHA1_80 inline:",
		"short key":       "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey[:20],
		"long key":        "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "AAAA",
		"huge key":        "1 AES_CM_128_HMAC_SHA1_80 inline:" + strings.Repeat("A", 4000),
		"not base64":      "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!" + rfcKey[4:],
		"not inline":      "1 AES_CM_128_HMAC_SHA1_80 uri:https://x",
		"bad tag":         "x AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey,
		"long tag":        "12345678901 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey,
		"lifetime 2^64":   "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|2^64",
		"lifetime 2^49":   "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|2^49",
		"lifetime 0":      "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|0",
		"lifetime huge":   "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|99999999999999999999999",
		"two lifetimes":   "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|2^20|2^30",
		"mki too long":    "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|1:9",
		"mki overflow":    "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|256:1",
		"two keys":        "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + ";inline:" + rfcKey,
		"unencrypted":     "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + " UNENCRYPTED_SRTP",
		"kdr":             "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + " KDR=4",
		"too many params": "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|2^20|1:4|x",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseCrypto(in); !errors.Is(err, ErrBadCrypto) {
				t.Fatalf("err = %v, want ErrBadCrypto", err)
			}
		})
	}
	for _, s := range []string{"F8_128_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_80", "AEAD_AES_256_GCM"} {
		if _, err := ParseCrypto("1 " + s + " inline:" + rfcKey); !errors.Is(err, ErrUnknownSuite) {
			t.Fatalf("%s: err = %v, want ErrUnknownSuite", s, err)
		}
	}
}

func FuzzParseCrypto(f *testing.F) {
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|2^20|1:4")
	f.Add("2 AEAD_AES_128_GCM inline:" + strings.Repeat("A", 38) + " WSH=128")
	f.Add("3 AES_CM_128_HMAC_SHA1_32 inline:" + rfcKey + "|2^48")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseCrypto(in)
		if err != nil {
			if !errors.Is(err, ErrBadCrypto) && !errors.Is(err, ErrUnknownSuite) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		if len(c.Key) != KeyLen(c.Suite) {
			t.Fatalf("accepted a key of %d bytes for %s", len(c.Key), c.Suite)
		}
		again, err := ParseCrypto(c.String())
		if err != nil || !bytes.Equal(again.Key, c.Key) || again.Lifetime != c.Lifetime || !bytes.Equal(again.MKI, c.MKI) {
			t.Fatalf("String() of an accepted line does not parse back: %q: %v", c.String(), err)
		}
	})
}
