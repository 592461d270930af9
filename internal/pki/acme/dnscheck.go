package acme

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/miekg/dns"
)

// resolverCheck is lego's check before a dns-01 challenge is handed to the
// CA, against the resolvers of acme.dns_resolvers instead of the zone's
// authoritative servers: every resolver must answer the TXT record with
// the value. Not yet (or an unreachable resolver, whose error is kept for
// the failure's text) makes lego ask again until the provider's
// propagation timeout.
func resolverCheck(resolvers []string) dns01.ChallengeOption {
	return dns01.WrapPreCheck(func(ctx context.Context, _, fqdn, value string, _ dns01.PreCheckFunc) (bool, error) {
		for _, r := range resolvers {
			if ok, err := hasTXT(ctx, r, fqdn, value); !ok {
				return false, err
			}
		}
		return true, nil
	})
}

// hasTXT asks resolver for the TXT records of fqdn (TCP when the answer
// is truncated).
func hasTXT(ctx context.Context, resolver, fqdn, value string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(fqdn), dns.TypeTXT)
	q.RecursionDesired = true
	r, _, err := (&dns.Client{}).ExchangeContext(ctx, q, resolver)
	if err == nil && r.Truncated {
		r, _, err = (&dns.Client{Net: "tcp"}).ExchangeContext(ctx, q, resolver)
	}
	if err != nil {
		return false, fmt.Errorf("asking %s for %s: %w", resolver, fqdn, err)
	}
	for _, rr := range r.Answer {
		// A long value comes in 255-byte strings.
		if txt, ok := rr.(*dns.TXT); ok && strings.Join(txt.Txt, "") == value {
			return true, nil
		}
	}
	return false, nil
}
