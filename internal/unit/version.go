package unit

import "runtime/debug"

// Set by the Makefile: -ldflags "-X github.com/palisade-sbc/palisade/internal/unit.version=...
// -X github.com/palisade-sbc/palisade/internal/unit.commit=...".
var (
	version = ""
	commit  = ""
)

// Version returns the release version and the commit the binary was built
// from. Without -ldflags they come from the module build information.
func Version() (ver, rev string) {
	ver, rev = version, commit
	if ver != "" && rev != "" {
		return ver, rev
	}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if ver == "" && bi.Main.Version != "" {
			ver = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && rev == "" {
				rev = s.Value
				if len(rev) > 12 {
					rev = rev[:12]
				}
			}
		}
	}
	if ver == "" {
		ver = "(devel)"
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev
}
