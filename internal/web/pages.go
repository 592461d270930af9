package web

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
)

// configPage is a page that edits part of the preliminary configuration.
type configPage struct {
	Path string
	Tmpl string
	// save copies the posted form into cfg; parse problems go to f.fail.
	save func(f *form, cfg *config.Config)
	// extra returns page data besides the configuration (e.g. certificate names).
	extra func(s *server, r *http.Request) any
}

var configPages = []configPage{
	{Path: "/basic/access", Tmpl: "access", save: saveAccess},
	{Path: "/network", Tmpl: "network", save: saveNetwork},
	{Path: "/sip/signalling", Tmpl: "signalling", save: saveSignalling},
	{Path: "/sip/media", Tmpl: "media", save: saveMedia},
	{Path: "/sip/interop", Tmpl: "interop", save: saveInterop},
	{Path: "/traffic/methods", Tmpl: "methods", save: saveMethods},
	{Path: "/traffic/access", Tmpl: "sipaccess", save: saveSIPAccess},
	{Path: "/traffic/registrar", Tmpl: "registrar", save: saveRegistrar},
	{Path: "/traffic/accounts", Tmpl: "accounts", save: saveAccounts},
	{Path: "/traffic/dialplan", Tmpl: "dialplan", save: saveDialPlan},
	{Path: "/traffic/routing", Tmpl: "routing", save: saveRouting},
	{Path: "/tools/settings", Tmpl: "settings", save: saveObserve},
}

func (s *server) showPage(p configPage) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := s.newView(r.Context(), r, titleOf(p.Path))
		cfg, etag, err := s.env.Config.Preliminary(r.Context())
		if err != nil {
			v.Problem = "cannot read the preliminary configuration: " + err.Error()
			cfg = config.Default()
		}
		v.Cfg, v.ETag = cfg, etag
		if p.extra != nil {
			v.Data = p.extra(s, r)
		}
		s.render(w, http.StatusOK, p.Tmpl, v)
	}
}

func (s *server) savePage(p configPage) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		v := s.newView(ctx, r, titleOf(p.Path))
		if p.extra != nil {
			v.Data = p.extra(s, r)
		}
		cfg, etag, err := s.env.Config.Preliminary(ctx)
		if err != nil {
			v.Problem = "cannot read the preliminary configuration: " + err.Error()
			v.Cfg = config.Default()
			s.render(w, http.StatusInternalServerError, p.Tmpl, v)
			return
		}
		if err := r.ParseForm(); err != nil {
			// Never save from a form that was not read whole: the tables
			// would come out empty.
			v.Cfg, v.ETag, v.Problem = cfg, etag, "the form could not be read: "+err.Error()
			s.render(w, http.StatusBadRequest, p.Tmpl, v)
			return
		}
		if r.PostFormValue("etag") != etag {
			saves.WithLabelValues("stale").Inc()
			v.Cfg, v.ETag, v.Problem = cfg, etag, errStale.Error()
			s.render(w, http.StatusConflict, p.Tmpl, v)
			return
		}
		f := &form{r: r}
		p.save(f, cfg)
		v.Cfg, v.ETag = cfg, etag
		if len(f.errs) > 0 {
			// Every problem at once: what could not be read, and what the
			// rest of the page would break; the page keeps what was typed.
			saves.WithLabelValues("invalid").Inc()
			errs := f.errs
			for _, e := range cfg.Validate() {
				if !slices.ContainsFunc(errs, func(x config.FieldError) bool { return x.Path == e.Path }) {
					errs = append(errs, e)
				}
			}
			v.setErrors(errs)
			s.renderTyped(w, r, http.StatusUnprocessableEntity, p.Tmpl, v)
			return
		}
		_, err = s.env.Config.SetPreliminary(ctx, cfg, etag, admin.Author(r))
		var fe config.Errors
		switch {
		case errors.As(err, &fe):
			saves.WithLabelValues("invalid").Inc()
			v.setErrors(fe)
			s.renderTyped(w, r, http.StatusUnprocessableEntity, p.Tmpl, v)
		case errors.Is(err, lifecycle.ErrPreconditionFailed):
			saves.WithLabelValues("stale").Inc()
			cur, etag, _ := s.env.Config.Preliminary(ctx)
			if cur != nil {
				v.Cfg, v.ETag = cur, etag
			}
			v.Problem = errStale.Error()
			s.render(w, http.StatusConflict, p.Tmpl, v)
		case err != nil:
			saves.WithLabelValues("error").Inc()
			v.Problem = "saving failed: " + err.Error()
			s.render(w, http.StatusInternalServerError, p.Tmpl, v)
		default:
			saves.WithLabelValues("ok").Inc()
			redirectDone(w, r, p.Path, "saved")
		}
	}
}

func saveAccess(f *form, c *config.Config) {
	c.Unit.Name = f.str("unit_name")
	c.Unit.Topology = f.str("topology")
	c.Admin.Listen = f.str("listen")
	c.Admin.SessionTimeout = f.dur("session_timeout", "admin.session_timeout")
	c.Admin.Certificate = f.str("admin_certificate")
	c.Admin.AllowedNetworks = []string{}
	for _, row := range f.rows("nets", "cidr") {
		c.Admin.AllowedNetworks = append(c.Admin.AllowedNetworks, row["cidr"])
	}
	if pw := f.r.PostFormValue("new_password"); pw != "" {
		switch {
		case pw != f.r.PostFormValue("new_password2"):
			f.fail("admin.password_hash", "the two passwords differ")
		case len(pw) < 8:
			f.fail("admin.password_hash", "the password needs at least 8 characters")
		default:
			h, err := admin.HashPassword(pw)
			if err != nil {
				f.fail("admin.password_hash", "%v", err)
			}
			c.Admin.PasswordHash = h
		}
	}
}

func saveNetwork(f *form, c *config.Config) {
	c.Network.Interfaces = []config.Interface{}
	for _, row := range f.rows("ifaces", "name", "address", "advertised", "fqdn") {
		c.Network.Interfaces = append(c.Network.Interfaces, config.Interface{
			Name: row["name"], Address: row["address"], AdvertisedAddress: row["advertised"], FQDN: row["fqdn"]})
	}
	c.Network.Gateway = f.str("gateway")
	c.Network.DNSServers = []string{}
	for _, row := range f.rows("dns", "server") {
		c.Network.DNSServers = append(c.Network.DNSServers, row["server"])
	}
}

func saveSignalling(f *form, c *config.Config) {
	c.SIP.Listeners = []config.Listener{}
	for i, row := range f.rows("listeners", "!interface", "!transport", "port", "!certificate", "!require_client_cert") {
		c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{
			Interface: row["interface"], Transport: row["transport"],
			Port:        f.atoi(row["port"], path("sip.listeners[%d].port", i)),
			Certificate: row["certificate"], RequireClientCert: row["require_client_cert"] == "yes",
		})
	}
	f.r.ParseForm()
	c.TLS.CACertificates = append([]string{}, f.r.PostForm["ca_certificates"]...)
	c.TLS.ClientCertificate = f.str("client_certificate")
	c.TLS.CheckServerDomain = f.bool("check_server_domain")
	c.TLS.MinVersion = f.str("min_version")
	c.TLS.MaxVersion = f.str("max_version")
	c.TLS.UseSystemRoots = f.bool("use_system_roots")
	c.TLS.HandshakeTimeout = f.dur("handshake_timeout", "tls.handshake_timeout")
	c.TLS.IdleTimeout = f.dur("idle_timeout", "tls.idle_timeout")
}

func saveMedia(f *form, c *config.Config) {
	m := &c.Media
	m.EncryptionEnabled = f.bool("encryption_enabled")
	m.PortMin = f.int("port_min", "media.port_min")
	m.PortMax = f.int("port_max", "media.port_max")
	m.InactivityTimeout = f.dur("inactivity_timeout", "media.inactivity_timeout")
	m.BatchInterval = f.dur("batch_interval", "media.batch_interval")
	m.RealtimePriority = f.int("realtime_priority", "media.realtime_priority")
	// Groups are posted one suite per row; rows with the same name form one
	// group, in the order the names first appear.
	m.CryptoSuiteGroups = []config.CryptoSuiteGroup{}
	for _, row := range f.rows("suites", "group", "!suite") {
		name := row["group"]
		i := slices.IndexFunc(m.CryptoSuiteGroups, func(g config.CryptoSuiteGroup) bool { return g.Name == name })
		if i < 0 {
			m.CryptoSuiteGroups = append(m.CryptoSuiteGroups, config.CryptoSuiteGroup{Name: name})
			i = len(m.CryptoSuiteGroups) - 1
		}
		m.CryptoSuiteGroups[i].Suites = append(m.CryptoSuiteGroups[i].Suites, row["suite"])
	}
	m.Policies = []config.MediaPolicy{}
	for _, row := range f.rows("policies", "!interface", "!group", "!requirement") {
		m.Policies = append(m.Policies, config.MediaPolicy{Interface: row["interface"], Group: row["group"], Requirement: row["requirement"]})
	}
	m.DefaultPolicy = config.DefaultMediaPolicy{
		Group: f.str("default_group"), Requirement: f.str("default_requirement"),
		AllowTranscoding: f.bool("allow_transcoding"), RTPProfile: f.str("rtp_profile"),
	}
}

func saveInterop(f *form, c *config.Config) {
	c.TLS.AllowWildcardServerCertificates = f.bool("allow_wildcard")
	c.SIP.TopologyHiding = f.bool("topology_hiding")
	c.SIP.UserAgent = f.str("user_agent")
	c.SIP.MaxForwards = f.int("max_forwards", "sip.max_forwards")
	c.SIP.NoAnswerTimeout = f.dur("no_answer_timeout", "sip.no_answer_timeout")
	c.SIP.InviteTimeout = f.dur("invite_timeout", "sip.invite_timeout")
}

// sipMethods are offered on the methods page.
var sipMethods = []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "PRACK", "UPDATE", "INFO",
	"MESSAGE", "REFER", "NOTIFY", "SUBSCRIBE", "REGISTER", "PUBLISH"}

func saveMethods(f *form, c *config.Config) {
	f.r.ParseForm()
	c.SIP.AllowedMethods = []string{}
	for _, m := range f.r.PostForm["methods"] {
		c.SIP.AllowedMethods = append(c.SIP.AllowedMethods, m)
	}
	for _, m := range lines(strings.ToUpper(f.str("other_methods"))) {
		if !slices.Contains(c.SIP.AllowedMethods, m) {
			c.SIP.AllowedMethods = append(c.SIP.AllowedMethods, m)
		}
	}
}

func saveObserve(f *form, c *config.Config) {
	o := &c.Observe
	o.TraceCalls = f.bool("trace_calls")
	o.TraceBufferCalls = f.int("trace_buffer_calls", "observe.trace_buffer_calls")
	o.TraceFailedKeep = f.dur("trace_failed_keep", "observe.trace_failed_keep")
	o.CDRRetention = f.dur("cdr_retention", "observe.cdr_retention")
	o.LogLevel = f.str("log_level")
}

func saveSIPAccess(f *form, c *config.Config) {
	c.SIP.UnknownSource = f.str("unknown_source")
	c.SIP.RestrictedInterfaces = append([]string{}, f.r.PostForm["restricted_interfaces"]...)
	c.SIP.MaxCalls = f.int("max_calls", "sip.max_calls")
	c.SIP.MaxCallRate = f.int("max_call_rate", "sip.max_call_rate")
	c.SIP.SourceRateLimit = f.int("source_rate_limit", "sip.source_rate_limit")
	c.SIP.SourceBlockTime = f.dur("source_block_time", "sip.source_block_time")
}
