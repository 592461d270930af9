package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"
)

// Cause is a class of failed TLS handshakes (the seed's §7.1.6); it is the
// label of palisade_pki_tls_handshake_failures_total.
type Cause string

// The causes a failed handshake is classified into.
const (
	CauseWrongStore          Cause = "wrong_store"
	CauseMissingIntermediate Cause = "missing_intermediate"
	CauseNameMismatch        Cause = "name_mismatch"
	CauseUnknownCA           Cause = "unknown_ca"
	CauseExpired             Cause = "expired"
	CauseNotYetValid         Cause = "not_yet_valid"
	CauseRevoked             Cause = "revoked"
	CauseNoClientCert        Cause = "no_client_certificate"
	CauseWrongUsage          Cause = "wrong_usage"
	CauseProtocol            Cause = "protocol_mismatch"
	CauseCipher              Cause = "cipher_mismatch"
	CauseNoCertificate       Cause = "no_own_certificate"
	CauseNotTLS              Cause = "not_tls"
	CauseTimeout             Cause = "timeout"
	CauseOther               Cause = "other"
)

// Diagnosis is a failed handshake explained.
type Diagnosis struct {
	Cause Cause `json:"cause"`
	// Side is "peer" when this unit refused the peer's certificate, "local"
	// when the peer refused this unit's certificate or settings, "" when
	// unknown.
	Side    string `json:"side,omitempty"`
	Message string `json:"message"`
}

func (d Diagnosis) String() string { return fmt.Sprintf("%s: %s", d.Cause, d.Message) }

// VerifyError is a certificate this unit refused, with its diagnosis. The
// handshake error is a *VerifyError whenever the unit's own checks refused
// the peer.
type VerifyError struct{ Diagnosis }

func (e *VerifyError) Error() string { return e.Message }

func verr(c Cause, msg string) *VerifyError {
	return &VerifyError{Diagnosis{Cause: c, Side: "peer", Message: msg}}
}

// ownView is what the diagnosis knows about the unit's own side of a failed
// handshake: the certificate it presented (nil when none) and the names it is
// expected to carry.
type ownView struct {
	name     string // entry name
	chain    []*x509.Certificate
	status   ChainStatus
	fqdn     string // the interface's FQDN (server side), for name checks
	sentCert bool
	versions string // "1.2-1.3"
}

// Classify explains a handshake error. own describes this unit's side; it
// may be nil.
func Classify(err error, own *ownView, now time.Time) Diagnosis {
	var ve *VerifyError
	if errors.As(err, &ve) {
		return ve.Diagnosis
	}
	var ae tls.AlertError
	msg := err.Error()
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return Diagnosis{Cause: CauseTimeout, Message: "the handshake did not finish in time: the peer did not answer (is it a TLS port? is a firewall dropping packets?)"}
	case errors.As(err, &ae), strings.Contains(msg, "remote error: tls: "):
		return classifyAlert(msg, own, now)
	case strings.Contains(msg, "first record does not look like a TLS handshake"),
		strings.Contains(msg, "oversized record"), strings.Contains(msg, "unsupported SSLv2"):
		return Diagnosis{Cause: CauseNotTLS, Message: "the peer does not speak TLS on this port (it sent something else, e.g. plain SIP): check the transport and port"}
	case strings.Contains(msg, "unsupported versions"), strings.Contains(msg, "protocol version"),
		strings.Contains(msg, "no supported versions"), strings.Contains(msg, "server selected unsupported protocol version"):
		return Diagnosis{Cause: CauseProtocol, Side: "local", Message: "no TLS version in common: this unit accepts TLS " + versionsOf(own) +
			"; the peer offered others (tls.min_version/tls.max_version, or upgrade the peer)"}
	case strings.Contains(msg, "no cipher suite supported"), strings.Contains(msg, "no mutual cipher"):
		return Diagnosis{Cause: CauseCipher, Side: "local", Message: "no cipher suite in common: this unit offers only ECDHE with AES-GCM or ChaCha20-Poly1305 for TLS 1.2 (and the TLS 1.3 suites); the peer offered none of them"}
	case strings.Contains(msg, "client didn't provide a certificate"):
		return Diagnosis{Cause: CauseNoClientCert, Side: "peer", Message: "the peer sent no client certificate, but this listener requires one (require_client_cert)"}
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), strings.Contains(msg, "connection reset"):
		return Diagnosis{Cause: CauseOther, Message: "the peer closed the connection during the handshake without saying why: it may refuse this unit's certificate or TLS version silently, or not speak TLS"}
	case errors.Is(err, syscall.ECONNREFUSED):
		return Diagnosis{Cause: CauseOther, Message: "nothing listens on that address and port (connection refused)"}
	}
	return Diagnosis{Cause: CauseOther, Message: msg}
}

func versionsOf(own *ownView) string {
	if own == nil || own.versions == "" {
		return "1.2-1.3"
	}
	return own.versions
}

// classifyAlert explains an alert the peer sent: the peer refused something
// of ours. What the unit knows about its own certificate sharpens the advice.
func classifyAlert(msg string, own *ownView, now time.Time) Diagnosis {
	d := Diagnosis{Side: "local"}
	var leaf *x509.Certificate
	if own != nil && len(own.chain) > 0 {
		leaf = own.chain[0]
	}
	ours := "this unit's certificate"
	if own != nil && own.name != "" {
		ours = fmt.Sprintf("this unit's certificate %q", own.name)
	}
	switch {
	case strings.Contains(msg, "certificate required"),
		strings.Contains(msg, "handshake failure") && own != nil && !own.sentCert && leaf == nil:
		d.Cause = CauseNoClientCert
		d.Message = "the peer requires a client certificate and this unit sent none: set tls.client_certificate to a private certificate with a CA-signed certificate"
	case strings.Contains(msg, "unknown certificate authority"):
		if own != nil && !own.status.Complete && leaf != nil && !selfSigned(leaf) {
			d.Cause = CauseMissingIntermediate
			d.Message = fmt.Sprintf("the peer does not know the CA of %s: its chain is incomplete (%s). Import the intermediate certificate into the entry with 'palisade cert import'",
				ours, own.status.Message)
		} else {
			d.Cause = CauseUnknownCA
			iss := "its issuer"
			if leaf != nil {
				iss = fmt.Sprintf("%q", rootLabel(own.chain))
			}
			d.Message = fmt.Sprintf("the peer does not trust the CA of %s: the peer must import %s into its CA store", ours, iss)
		}
	case strings.Contains(msg, "certificate expired"):
		d.Cause = CauseExpired
		d.Message = "the peer says a certificate has expired"
		if leaf != nil {
			d.Message = fmt.Sprintf("the peer refused %s as expired or not yet valid: it is %s (now %s); renew it, or check the clocks", ours, validity(leaf), now.UTC().Format(dateFmt))
			if now.Before(leaf.NotBefore) {
				d.Cause = CauseNotYetValid
			}
		}
	case strings.Contains(msg, "certificate revoked"):
		d.Cause = CauseRevoked
		d.Message = fmt.Sprintf("the peer says %s has been revoked by its CA: get a new certificate", ours)
	case strings.Contains(msg, "unsupported certificate"):
		d.Cause = CauseWrongUsage
		d.Message = fmt.Sprintf("the peer refused %s for its usage: it needs both serverAuth and clientAuth extended key usage", ours)
		if leaf != nil {
			d.Message += fmt.Sprintf(" (it has: %s)", strings.Join(extKeyUsageNames(leaf), ", "))
		}
	case strings.Contains(msg, "protocol version"):
		d.Cause = CauseProtocol
		d.Message = "the peer accepts none of the TLS versions this unit offers (" + versionsOf(own) + "): adjust tls.min_version/tls.max_version only if the peer cannot be upgraded"
	case strings.Contains(msg, "insufficient security"), strings.Contains(msg, "handshake failure"):
		d.Cause = CauseCipher
		d.Message = "the peer refused the handshake (no cipher suite or TLS parameters in common): this unit offers TLS " + versionsOf(own) + " with ECDHE and AES-GCM/ChaCha20 only"
	case strings.Contains(msg, "bad certificate"), strings.Contains(msg, "certificate unknown"), strings.Contains(msg, "access denied"):
		d = ownCertProblem(own, ours, leaf, now)
	default:
		d.Cause = CauseOther
		d.Message = "the peer ended the handshake: " + msg
	}
	return d
}

// ownCertProblem guesses why a peer called our certificate "bad": what is
// wrong with it that the unit can see itself.
func ownCertProblem(own *ownView, ours string, leaf *x509.Certificate, now time.Time) Diagnosis {
	d := Diagnosis{Side: "local"}
	switch {
	case leaf == nil:
		d.Cause = CauseNoClientCert
		d.Message = "the peer refused the handshake and this unit sent no certificate: set tls.client_certificate"
	case now.After(leaf.NotAfter) || now.Before(leaf.NotBefore):
		d.Cause = CauseExpired
		d.Message = fmt.Sprintf("%s is out of date: it is %s", ours, validity(leaf))
	case !hasUsage(leaf, x509.ExtKeyUsageClientAuth) || !hasUsage(leaf, x509.ExtKeyUsageServerAuth):
		d.Cause = CauseWrongUsage
		d.Message = fmt.Sprintf("the peer refused %s; it lacks serverAuth or clientAuth usage (it has: %s): request a certificate with both", ours, strings.Join(extKeyUsageNames(leaf), ", "))
	case own.fqdn != "" && !matchName(leaf, own.fqdn, false):
		d.Cause = CauseNameMismatch
		d.Message = fmt.Sprintf("the peer refused %s: it is for %s, but the interface's FQDN is %q; the CN must be the FQDN peers know this unit by",
			ours, quoteList(names(leaf)), own.fqdn)
	case !own.status.Complete && !selfSigned(leaf):
		d.Cause = CauseMissingIntermediate
		d.Message = fmt.Sprintf("the peer refused %s: %s", ours, own.status.Message)
	default:
		d.Cause = CauseUnknownCA
		d.Message = fmt.Sprintf("the peer refused %s (names %s, issued by %q): check that the peer trusts that CA and expects these names", ours, quoteList(names(leaf)), issuerLabel(leaf))
	}
	return d
}

func hasUsage(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true // no EKU extension: any usage
	}
	for _, x := range c.ExtKeyUsage {
		if x == u || x == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// rootLabel names the CA a peer must trust for chain: the issuer of its
// last certificate.
func rootLabel(chain []*x509.Certificate) string {
	top := chain[len(chain)-1]
	if selfSigned(top) {
		return label(top)
	}
	return issuerLabel(top)
}
