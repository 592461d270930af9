package media

import (
	"github.com/palisade-sbc/palisade/internal/testkit"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// Golden files: testdata/golden/NAME.{a,b}.in is an offer received on side
// a (inside) or b (outside); NAME.out is what the relay sends on the other
// side with the default policy (outside SRTP, inside RTP). Ports are
// replaced by PORT_A / PORT_B, keys are all zero bytes.
func TestGoldenOffers(t *testing.T) {
	files, _ := filepath.Glob("testdata/golden/*.in")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".in")
		t.Run(name, func(t *testing.T) {
			r := newTestRelay(t, testConfig(t, 20))
			r.rand = zeroReader{}
			cl, err := r.NewCall(name,
				Leg{Interface: "inside", Bind: lo, Advertised: netip.MustParseAddr("192.0.2.1")},
				Leg{Interface: "outside", Bind: lo, Advertised: netip.MustParseAddr("2001:db8::2")})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			c := cl.(*call)
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			side := SideA
			if strings.HasSuffix(name, ".b") {
				side = SideB
			}
			out, err := c.Offer(side, in)
			if err != nil {
				t.Fatal(err)
			}
			// m= line 0 gets PORT_A / PORT_B, line i PORT_Ai / PORT_Bi.
			var repl []string
			for i := range 4 {
				n := ""
				if i > 0 {
					n = strconv.Itoa(i)
				}
				for _, s := range []Side{SideA, SideB} {
					if p := c.port(i, s); p != 0 {
						name := "PORT_" + strings.ToUpper(s.String()) + n
						repl = append(repl, " "+strconv.Itoa(p)+" ", " "+name+" ", ":"+strconv.Itoa(p+1), ":"+name+"+1")
					}
				}
			}
			got := strings.NewReplacer(repl...).Replace(string(out))
			gf := strings.TrimSuffix(f, ".in") + ".out"
			testkit.Golden(t, gf, []byte(got))
		})
	}
}
