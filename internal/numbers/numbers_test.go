package numbers

import (
	"errors"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// teamsE164 is what the teams-direct-routing profile writes towards Teams.
var teamsE164 = []Rule{
	{Match: `00([1-9][0-9]{5,14})`, Replace: "+$1"},
	{Match: `[1-9][0-9]{6,14}`, AddPrefix: "+"},
}

func TestNumber(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules []Rule
		field string
		in    string
		want  string
	}{
		{"international prefix to plus", teamsE164, RequestURI, "004930123456", "+4930123456"},
		{"national significant number gets plus", teamsE164, To, "4930123456", "+4930123456"},
		{"already E.164 unchanged", teamsE164, From, "+4930123456", "+4930123456"},
		{"short extension unchanged", teamsE164, RequestURI, "1234", "1234"},
		{"parameters kept", teamsE164, RequestURI, "4930123456;phone-context=x", "+4930123456;phone-context=x"},
		{"strip plus inbound", []Rule{{Match: `\+[0-9]+`, StripPrefix: "+"}}, RequestURI, "+4930123", "4930123"},
		{"strip only when present", []Rule{{Match: `[0-9]+`, StripPrefix: "9", AddPrefix: "0"}}, To, "123", "0123"},
		{"strip and add", []Rule{{Match: `9[0-9]+`, StripPrefix: "9", AddPrefix: "+46"}}, To, "9812345", "+46812345"},
		{"field filter skips", []Rule{{Fields: []string{From, PAI}, AddPrefix: "+"}}, RequestURI, "4930", "4930"},
		{"field filter applies", []Rule{{Fields: []string{From, PAI}, AddPrefix: "+"}}, PAI, "4930", "+4930"},
		{"rules chain", []Rule{{Match: `0([1-9][0-9]+)`, Replace: "49$1"}, {Match: `49[0-9]+`, AddPrefix: "+"}}, RequestURI, "030123", "+4930123"},
		{"braced group", []Rule{{Match: `(1)(2)`, Replace: "${2}0$1"}}, To, "12", "201"},
		{"empty number stays", []Rule{{AddPrefix: "+"}}, To, "", ""},
		{"alphanumeric user untouched by digit rule", teamsE164, From, "alice", "alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Compile(tc.rules, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Number(tc.field, tc.in); got != tc.want {
				t.Fatalf("Number(%s, %q) = %q, want %q", tc.field, tc.in, got, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rule  Rule
		empty bool   // wants ErrEmpty
		bad   string // wants another error ("" = valid)
	}{
		{"plain add", Rule{AddPrefix: "+"}, false, ""},
		{"strip without match empties a number that is only the prefix", Rule{StripPrefix: "0"}, true, ""},
		{"strip with match that needs more digits", Rule{Match: `0[1-9][0-9]*`, StripPrefix: "0"}, false, ""},
		{"strip with match that allows the bare prefix", Rule{Match: `0[0-9]*`, StripPrefix: "0"}, true, ""},
		{"strip and add", Rule{StripPrefix: "0", AddPrefix: "+49"}, false, ""},
		{"replace with optional group only", Rule{Match: `0([0-9]*)`, Replace: "$1"}, true, ""},
		{"replace with group in alternation", Rule{Match: `0([1-9]+)|x`, Replace: "$1"}, true, ""},
		{"replace with required group", Rule{Match: `0([1-9]+)`, Replace: "$1"}, false, ""},
		{"replace to nothing", Rule{Match: `[0-9]+`, Replace: ""}, false, ""}, // "" = no replace
		{"replace with literal", Rule{Match: `([0-9]*)`, Replace: "+$1"}, false, ""},
		{"repeat zero", Rule{Match: `0([0-9]){0,3}`, Replace: "$1"}, true, ""},
		{"replace then strip all", Rule{Match: `([0-9])`, Replace: "$1", StripPrefix: "5"}, true, ""},
		{"replace without match", Rule{Replace: "+1"}, false, "needs match"},
		{"missing group", Rule{Match: `([0-9]+)`, Replace: "$2"}, false, "lacks"},
		{"bad regex", Rule{Match: `(`}, false, "match"},
		{"bad field", Rule{Fields: []string{"contact"}}, false, "not one of"},
		{"bad prefix chars", Rule{AddPrefix: "a b"}, false, "may hold only"},
		{"bad replace chars", Rule{Match: `([0-9]+)`, Replace: "<$1>"}, false, "may hold only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.rule)
			switch {
			case tc.empty:
				if !errors.Is(err, ErrEmpty) {
					t.Fatalf("Check = %v, want ErrEmpty", err)
				}
			case tc.bad != "":
				if err == nil || errors.Is(err, ErrEmpty) || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("Check = %v, want an error with %q", err, tc.bad)
				}
			default:
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
			}
		})
	}
}

func TestURIAndAddress(t *testing.T) {
	s, err := Compile(teamsE164, true)
	if err != nil {
		t.Fatal(err)
	}
	var u sip.Uri
	if err := sip.ParseUri("sip:004930123456@sbc.example.com:5061;transport=tls", &u); err != nil {
		t.Fatal(err)
	}
	if !s.URI(RequestURI, &u) {
		t.Fatal("URI reported no change")
	}
	if got, want := u.String(), "sip:+4930123456@sbc.example.com:5061;transport=tls;user=phone"; got != want {
		t.Fatalf("URI = %s, want %s", got, want)
	}
	for _, tc := range []struct{ in, want string }{
		{`"Alice" <sip:4930123456@pbx.example.com>;tag=abc`, `"Alice" <sip:+4930123456@pbx.example.com;user=phone>;tag=abc`},
		{`<sip:alice@pbx.example.com>`, `<sip:alice@pbx.example.com>`}, // no number: unchanged
		{`<tel:004930123456>`, `<tel:+4930123456>`},
		{`not an address`, `not an address`},
	} {
		if got := s.Address(PAI, tc.in); got != tc.want {
			t.Errorf("Address(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestE164(t *testing.T) {
	for in, want := range map[string]bool{"+4930123": true, "4930123": false, "+": false, "+49a": false,
		"+1234567890123456": false, "+123456789012345": true, "+4930;ext=1": true} {
		if IsE164(in) != want {
			t.Errorf("IsE164(%q) = %v", in, !want)
		}
	}
}

// FuzzRules checks the promise validation relies on: a rule Check accepts
// never turns a non-empty number into an empty one (apply, below Number's
// last guard), and nothing panics.
func FuzzRules(f *testing.F) {
	f.Add(`0([1-9][0-9]*)`, "+$1", "", "", "0301234")
	f.Add(`[0-9]+`, "", "0", "", "0")
	f.Add(``, "", "9", "+", "9")
	f.Add(`(a|)b`, "$1", "", "", "b")
	f.Add(`0?(1*)`, "$1", "", "", "0")
	f.Fuzz(func(t *testing.T, match, replace, strip, add, num string) {
		c, err := compile(Rule{Match: match, Replace: replace, StripPrefix: strip, AddPrefix: add})
		if err != nil || num == "" {
			return
		}
		if out, ok := c.apply(num); ok && out == "" {
			t.Fatalf("rule match=%q replace=%q strip=%q add=%q accepted, but it empties %q", match, replace, strip, add, num)
		}
		s := &Set{rules: []compiled{c}, UserPhone: true}
		_ = s.Address(To, "<sip:"+num+"@h>")
	})
}

func TestRequest(t *testing.T) {
	s, err := Compile(append([]Rule{{Fields: []string{From, PAI}, Match: `0([1-9][0-9]+)`, Replace: "+46$1"}}, teamsE164...), false)
	if err != nil {
		t.Fatal(err)
	}
	raw := "INVITE sip:004930123456@sip.pstnhub.microsoft.com SIP/2.0\r\n" +
		"Via: SIP/2.0/TLS 192.0.2.1;branch=z9hG4bK1\r\n" +
		"From: <sip:0812345@pbx.example.com>;tag=a\r\n" +
		"To: <sip:4930123456@sip.pstnhub.microsoft.com>\r\n" +
		"P-Asserted-Identity: \"Reception\" <sip:0812345@pbx.example.com>\r\n" +
		"P-Asserted-Identity: <tel:0812345>\r\n" +
		"Call-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	req := msg.(*sip.Request)
	if !s.Request(req) {
		t.Fatal("nothing changed")
	}
	wire := req.String()
	for _, want := range []string{
		"INVITE sip:+4930123456@sip.pstnhub.microsoft.com SIP/2.0\r\n",
		"\r\nFrom: <sip:+46812345@pbx.example.com>;tag=a\r\n",
		"\r\nTo: <sip:+4930123456@sip.pstnhub.microsoft.com>\r\n",
		"\r\nP-Asserted-Identity: \"Reception\" <sip:+46812345@pbx.example.com>\r\n",
		"\r\nP-Asserted-Identity: <tel:+46812345>\r\n",
	} {
		if !strings.Contains(wire, want) {
			t.Errorf("request lacks %q:\n%s", want, wire)
		}
	}
}
