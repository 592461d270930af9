package pki

import (
	"context"
	"fmt"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

// ExpiryWarningDays is how many days before expiry the unit starts warning.
const ExpiryWarningDays = 30

// Expiry is one certificate of the configuration and its days left.
type Expiry struct {
	Name     string    `json:"name"`
	Kind     string    `json:"kind"` // private | ca
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"not_after"`
	DaysLeft int       `json:"days_left"`
	Warning  string    `json:"warning,omitempty"` // set from ExpiryWarningDays before expiry
}

func expiryText(name string, notAfter time.Time, days int) string {
	if days < 0 {
		return fmt.Sprintf("%q expired on %s; renew it now", name, notAfter.UTC().Format("2006-01-02 15:04 MST"))
	}
	return fmt.Sprintf("%q expires in %d day(s), on %s; renew it before then", name, days, notAfter.UTC().Format("2006-01-02 15:04 MST"))
}

// Expiries lists every certificate named by cfg (private entries with a
// certificate, and CA entries) with its days left, in the configuration's
// order.
func (c *Certs) Expiries(ctx context.Context, cfg *config.Config) []Expiry {
	now := c.now()
	var out []Expiry
	add := func(name, kind, subject string, notAfter time.Time) {
		e := Expiry{Name: name, Kind: kind, Subject: subject, NotAfter: notAfter.UTC(), DaysLeft: daysLeft(notAfter, now)}
		if e.DaysLeft <= ExpiryWarningDays {
			e.Warning = expiryText(name, notAfter, e.DaysLeft)
		}
		out = append(out, e)
	}
	for _, p := range cfg.Certificates.Private {
		m, err := loadPrivate(ctx, c.Store, p.Name, materialOf(cfg, p))
		if err != nil || m.leaf() == nil {
			continue
		}
		add(p.Name, "private", m.leaf().Subject.String(), m.leaf().NotAfter)
	}
	for _, e := range cfg.Certificates.CA {
		ca, err := loadCA(ctx, c.Store, e.Name, e.Fingerprint)
		if err != nil {
			continue
		}
		add(e.Name, "ca", ca.Subject.String(), ca.NotAfter)
	}
	return out
}
