package trunk

import (
	"errors"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestAllow(t *testing.T) {
	if a := Allow(false); strings.Contains(a, "REFER") || !strings.Contains(a, "INVITE, ACK") {
		t.Errorf("Allow(false) = %q", a)
	}
	if a := Allow(true); !strings.HasSuffix(a, ", REFER") {
		t.Errorf("Allow(true) = %q", a)
	}
}

func TestHistoryInfo(t *testing.T) {
	in := []string{
		`<sip:+4930111@10.0.0.5:5060;user=phone?Reason=SIP%3Bcause%3D302>;index=1, <sip:+4930222@pbx.inside.lan;maddr=10.0.0.9>;index=1.1;rc=1`,
		`"Desk, 2" <sip:2002@10.0.0.7>;index=1.2`,
		`garbage without brackets`,
	}
	for _, tc := range []struct {
		mode   string
		hiding bool
		want   []string
	}{
		{"", true, nil},
		{"", false, in},
		{HistoryStrip, false, nil},
		{HistoryKeep, true, in},
		{HistoryRewrite, true, []string{
			`<sip:+4930111@sbc.example.com;user=phone?Reason=SIP%3Bcause%3D302>;index=1, <sip:+4930222@sbc.example.com>;index=1.1;rc=1`,
			`"Desk, 2" <sip:2002@sbc.example.com>;index=1.2`,
		}},
	} {
		got := HistoryInfo(HistoryMode(tc.mode, tc.hiding), in, "sbc.example.com")
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("mode %q hiding %v:\n got %q\nwant %q", tc.mode, tc.hiding, got, tc.want)
		}
	}
}

func TestNewLegURI(t *testing.T) {
	var rt sip.Uri
	if err := sip.ParseUri("sip:+4930900@sip.pstnhub.microsoft.com;user=phone;x-m=8:orgid:6f2a;x-t=tenant-1;transport=tls;method=INVITE", &rt); err != nil {
		t.Fatal(err)
	}
	got := NewLegURI(rt, "sip2.pstnhub.microsoft.com", 5061, "tls")
	if s := got.String(); s != "sip:+4930900@sip2.pstnhub.microsoft.com:5061;user=phone;x-m=8:orgid:6f2a;x-t=tenant-1;transport=tls" {
		t.Errorf("new leg URI %s", s)
	}
	bare := NewLegURI(rt, "", 0, "")
	if s := bare.String(); s != "sip:+4930900@sip.pstnhub.microsoft.com;user=phone;x-m=8:orgid:6f2a;x-t=tenant-1" {
		t.Errorf("without hop: %s", s)
	}
	if rt.UriParams.Has("method") != true {
		t.Error("the Refer-To URI was changed")
	}
}

func TestCheckReferTo(t *testing.T) {
	if err := CheckReferTo("<sip:+4930900@sip.pstnhub.microsoft.com;x-m=a;x-t=b>"); err != nil {
		t.Fatal(err)
	}
	if err := CheckReferTo("<sip:" + strings.Repeat("a", 10*1024) + "@x>"); !errors.Is(err, ErrReferTooLong) {
		t.Fatalf("10 KB Refer-To: %v", err)
	}
}
