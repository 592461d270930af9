package web

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/profiles"
	"github.com/palisade-sbc/palisade/internal/unit"
)

// Applying an ITSP profile first shows what it would change and warns where
// a change reaches settings other peers rely on (the media policy of their
// interface, the TLS settings of every TLS peer); only "Apply these changes"
// stores it.

// profileForm are the fields of the profile form, carried to the preview.
var profileForm = []string{"profile", "peer", "domain", "address", "transport", "prefix", "certificate", "fqdn"}

type profilePreviewData struct {
	Profile  string
	Peer     string
	Changes  []config.Change
	Warnings []string
	Form     map[string]string
}

// profileResult applies the posted profile to a copy of cfg.
func profileResult(r *http.Request, cfg *config.Config) (*config.Config, error) {
	after, err := config.Clone(cfg)
	if err != nil {
		return nil, err
	}
	// Teams needs the unit's FQDN on the interface facing it: the form asks
	// for it and sets it on the outside interface (or the only one).
	if fqdn := strings.TrimSpace(r.PostFormValue("fqdn")); fqdn != "" && len(after.Network.Interfaces) > 0 {
		i := slices.IndexFunc(after.Network.Interfaces, func(i config.Interface) bool { return i.Name == "outside" })
		after.Network.Interfaces[max(i, 0)].FQDN = fqdn
	}
	ver, _ := unit.Version()
	err = profiles.Apply(after, r.PostFormValue("profile"), profiles.Answers{
		PeerName: strings.TrimSpace(r.PostFormValue("peer")), Domain: strings.TrimSpace(r.PostFormValue("domain")),
		Address: strings.TrimSpace(r.PostFormValue("address")), Transport: r.PostFormValue("transport"),
		Prefix: strings.TrimSpace(r.PostFormValue("prefix")), Certificate: r.PostFormValue("certificate"), Version: ver,
	})
	return after, err
}

var policyPathRE = regexp.MustCompile(`^media\.policies\[(\d+)\]`)

// profileWarnings names the changes that reach other peers.
func profileWarnings(before *config.Config, changes []config.Change, peer, profile string) []string {
	others := func(match func(config.Peer) bool) []string {
		var out []string
		for _, p := range before.Peers {
			if p.Name != peer && match(p) {
				out = append(out, p.Name)
			}
		}
		return out
	}
	var warn []string
	// The form proposes the name "itsp": a second trunk left at it would
	// replace the first (the lab trunk replacing Teams).
	if i := slices.IndexFunc(before.Peers, func(p config.Peer) bool { return p.Name == peer }); i >= 0 && before.Peers[i].Profile != profile {
		old := before.Peers[i]
		was := old.Profile
		if was == "" {
			was = "generic"
		}
		warn = append(warn, fmt.Sprintf("Peer %s already exists (a %s %s on interface %s): this profile replaces its settings. To add a second trunk, give it another peer name.",
			peer, was, old.Kind, old.Interface))
	}
	for _, c := range changes {
		var who []string
		var what string
		switch m := policyPathRE.FindStringSubmatch(c.Path); {
		case m != nil:
			i, _ := strconv.Atoi(m[1])
			if i < len(before.Media.Policies) {
				iface := before.Media.Policies[i].Interface
				// peers with a media policy of their own (peers[].media) do not rely on it
				who = profiles.ReliesOnInterface(before, iface, peer)
				what = "the media policy of interface " + iface
			}
		case strings.HasPrefix(c.Path, "media.default_policy"):
			covered := func(iface string) bool {
				return slices.ContainsFunc(before.Media.Policies, func(p config.MediaPolicy) bool { return p.Interface == iface })
			}
			for _, iface := range names(before, "interfaces") {
				if !covered(iface) {
					who = append(who, profiles.ReliesOnInterface(before, iface, peer)...)
				}
			}
			what = "the default media policy"
		case strings.HasPrefix(c.Path, "tls."):
			who = others(func(p config.Peer) bool { return p.Transport == "tls" })
			what = "the TLS settings"
		}
		if len(who) > 0 {
			verb := "use"
			if len(who) == 1 {
				verb = "uses"
			}
			warn = append(warn, fmt.Sprintf("%s changes %s, which %s also %s: check that it still works with the new value.",
				c.String(), what, strings.Join(who, ", "), verb))
		}
	}
	return warn
}

// previewProfile renders the list of changes the profile would make.
func (s *server) previewProfile(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cfg, _, err := s.env.Config.Preliminary(ctx)
	var after *config.Config
	if err == nil {
		after, err = profileResult(r, cfg)
	}
	var changes []config.Change
	if err == nil {
		changes, err = config.Diff(cfg, after)
	}
	if err != nil {
		v := s.failedChange(r, tab("SIP Traffic"), "SIP Accounts", err)
		s.render(w, http.StatusUnprocessableEntity, "accounts", v)
		return
	}
	v := s.newView(ctx, r, "Apply an ITSP profile")
	v.Tab, v.Subs, v.Active = tab("SIP Traffic").Name, tab("SIP Traffic").Subs, "/traffic/accounts"
	d := profilePreviewData{Profile: r.PostFormValue("profile"), Peer: r.PostFormValue("peer"), Changes: redactChanges(changes),
		Warnings: profileWarnings(cfg, changes, strings.TrimSpace(r.PostFormValue("peer")), r.PostFormValue("profile")), Form: map[string]string{}}
	for _, f := range profileForm {
		d.Form[f] = r.PostFormValue(f)
	}
	v.Data = d
	s.render(w, http.StatusOK, "profile", v)
}
