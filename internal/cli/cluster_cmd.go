package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/cluster"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/unit"
)

func init() {
	Register(&Command{
		Name:    "cluster",
		Summary: "build, join, leave or show a cluster of units sharing their state on etcd",
		Usage: "cluster status | init --store etcd://HOST:PORT[,...] [--unit NAME] [--store-ca F --store-cert F --store-key F]\n" +
			"             | join --store etcd://... [--unit NAME] [...] | leave",
		Run: runCluster,
	})
	StatusPrinter("cluster", printClusterStatus)
}

// ClusterFile in the data directory remembers the cluster a unit belongs
// to (written by cluster init/join, removed by leave); palisade run reads
// it when neither --store nor PALISADE_STORE is given.
const ClusterFile = "cluster.json"

type clusterFile struct {
	Store     string `json:"store"`
	Unit      string `json:"unit"`
	StoreCA   string `json:"store_ca,omitempty"`
	StoreCert string `json:"store_cert,omitempty"`
	StoreKey  string `json:"store_key,omitempty"`
}

// sharedPrefixes are the keys cluster init copies into etcd and leave
// copies back: the configuration with its history, key material and API
// tokens. Registrations are not copied (phones register again), call
// records stay local.
var sharedPrefixes = []string{"config/", "pki/", "admin/tokens/"}

func runCluster(c *Context, args []string) error {
	return c.Dispatch(args, map[string]func(*Context, []string) error{
		"status": clusterStatus,
		"init":   func(c *Context, args []string) error { return clusterInitJoin(c, args, true) },
		"join":   func(c *Context, args []string) error { return clusterInitJoin(c, args, false) },
		"leave":  clusterLeave,
	})
}

func clusterStatus(c *Context, args []string) error {
	if len(args) > 0 {
		return c.Usagef("cluster status takes no arguments")
	}
	var raw json.RawMessage
	if err := c.Call("GET", "/api/v1/cluster", nil, &raw); err != nil {
		return err
	}
	return c.Output(raw, func(w io.Writer) { printClusterStatus(w, raw) })
}

func printClusterStatus(w io.Writer, raw json.RawMessage) {
	var st cluster.Status
	if json.Unmarshal(raw, &st) != nil {
		fmt.Fprintf(w, "%s\n", raw)
		return
	}
	if !st.Clustered {
		fmt.Fprintln(w, "single unit (no cluster)")
		return
	}
	fmt.Fprintf(w, "unit %s of the cluster in etcd namespace %s\n", st.Unit, st.Namespace)
	if st.Error != "" {
		fmt.Fprintf(w, "PROBLEM: %s (calls go on; configuration changes are refused until etcd answers)\n", st.Error)
	}
	fmt.Fprintf(w, "confirmation timer: %s\n", orDash(st.Leader))
	fmt.Fprintf(w, "%-16s %-8s %-12s %6s %14s  %s\n", "UNIT", "HEALTH", "VERSION", "CALLS", "REGISTRATIONS", "STARTED")
	for _, u := range st.Units {
		h := "ok"
		if !u.Healthy {
			h = "stale"
		}
		name := u.Unit
		if u.Self {
			name += " *"
		}
		fmt.Fprintf(w, "%-16s %-8s %-12s %6d %14d  %s\n", name, h, u.Version, u.Load.Calls, u.Load.Registrations,
			u.Started.Format("2006-01-02 15:04:05Z"))
	}
	fmt.Fprintf(w, "%-16s %-8s %-8s %-10s  %s\n", "ETCD MEMBER", "HEALTH", "LEADER", "VERSION", "CLIENT URLS")
	for _, m := range st.Etcd {
		h, l := "ok", ""
		if !m.Healthy {
			h = "DOWN"
		}
		if m.Leader {
			l = "leader"
		}
		fmt.Fprintf(w, "%-16s %-8s %-8s %-10s  %s\n", orDash(m.Name), h, l, m.Version, strings.Join(m.ClientURLs, ","))
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// stoppedDataDir checks that no unit runs on the data directory and locks
// it for the command.
func stoppedDataDir(c *Context) (*os.File, error) {
	if socketAnswers(filepath.Join(c.Data, admin.SocketFile)) {
		return nil, fmt.Errorf("a unit is running on %s: stop it first (the store of a running unit does not change under it)", c.Data)
	}
	if _, err := os.Stat(c.Data); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", c.Data, err)
	}
	return lockDataDir(c.Data)
}

// clusterInitJoin: init copies this unit's configuration into an empty
// etcd namespace, making it the cluster's; join checks that the cluster
// exists and runs this version. Both write DATA/cluster.json.
func clusterInitJoin(c *Context, args []string, init bool) error {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var sf storeFlags
	sf.register(fs)
	if err := fs.Parse(args); err != nil {
		return c.Usagef("%v", err)
	}
	if !sf.clustered() {
		return c.Usagef("--store etcd://HOST:PORT[,...] is required")
	}
	if err := sf.check(); err != nil {
		return c.Usagef("%v", err)
	}
	lock, err := stoppedDataDir(c)
	if err != nil {
		return err
	}
	defer lock.Close()
	ctx := c.Ctx()
	st, et, err := sf.open(ctx, c.Data)
	if err != nil {
		return err
	}
	defer st.Close()
	split := st.(*store.Split)
	_, _, cerr := lifecycle.StartupConfig(ctx, et)
	switch {
	case init && cerr == nil:
		return fmt.Errorf("the cluster at %s already has a configuration: use 'palisade cluster join'", sf.url)
	case !init && errors.Is(cerr, store.ErrNotFound):
		return fmt.Errorf("no cluster configuration at %s: build one with 'palisade cluster init' on the first unit", sf.url)
	case cerr != nil && !errors.Is(cerr, store.ErrNotFound):
		return fmt.Errorf("read the cluster's configuration: %w", cerr)
	}
	if init {
		if _, _, err := lifecycle.StartupConfig(ctx, split.Local); err != nil {
			return fmt.Errorf("this data directory holds no configuration to start the cluster with: %w", err)
		}
		n, err := copyKeys(ctx, split.Local, et, sharedPrefixes)
		if err != nil {
			return fmt.Errorf("copy the configuration into etcd: %w", err)
		}
		_ = et.Audit(ctx, store.AuditEntry{Author: "cli", Action: "cluster.init",
			Detail: fmt.Sprintf("cluster started from unit %s (%d keys)", sf.unit, n)})
	} else if err := checkVersions(ctx, et); err != nil {
		return err
	}
	if err := writeClusterFile(c.Data, sf); err != nil {
		return err
	}
	what := "joined"
	if init {
		what = "started the cluster with this unit's configuration;"
	}
	fmt.Fprintf(c.Stdout, "unit %s %s %s; start it with 'palisade run --data %s'\n", sf.unit, what, sf.url, c.Data)
	return nil
}

// checkVersions refuses to join a cluster whose live units run another
// version of Palisade (docs/cluster.md, version skew).
func checkVersions(ctx context.Context, et *store.Etcd) error {
	kvs, err := et.List(ctx, lifecycle.MembersPrefix)
	if err != nil {
		return err
	}
	mine, _ := unit.Version()
	for _, kv := range kvs {
		var m cluster.Member
		if json.Unmarshal(kv.Value, &m) == nil && m.Version != mine {
			return fmt.Errorf("unit %s of the cluster runs palisade %s, this is %s: every unit of a cluster runs the same version", m.Unit, m.Version, mine)
		}
	}
	return nil
}

func writeClusterFile(dir string, sf storeFlags) error {
	b, _ := json.MarshalIndent(clusterFile{Store: sf.url, Unit: sf.unit, StoreCA: sf.ca, StoreCert: sf.cert, StoreKey: sf.key}, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, ClusterFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", ClusterFile, err)
	}
	return nil
}

// readClusterFile fills sf from DATA/cluster.json when it exists and no
// store was given.
func readClusterFile(dir string, sf *storeFlags) error {
	b, err := os.ReadFile(filepath.Join(dir, ClusterFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var f clusterFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, ClusterFile), err)
	}
	sf.url = f.Store
	if sf.unit == "" {
		sf.unit = f.Unit
	}
	sf.ca, sf.cert, sf.key = f.StoreCA, f.StoreCert, f.StoreKey
	return nil
}

// clusterLeave makes the unit a single unit again, running the cluster's
// configuration: that is copied into its own SQLite first.
func clusterLeave(c *Context, args []string) error {
	if len(args) > 0 {
		return c.Usagef("cluster leave takes no arguments")
	}
	lock, err := stoppedDataDir(c)
	if err != nil {
		return err
	}
	defer lock.Close()
	var sf storeFlags
	if err := readClusterFile(c.Data, &sf); err != nil {
		return err
	}
	if sf.url == "" {
		return fmt.Errorf("%s is not the data directory of a cluster unit (no %s)", c.Data, ClusterFile)
	}
	ctx := c.Ctx()
	st, et, err := sf.open(ctx, c.Data)
	if err != nil {
		return fmt.Errorf("%w (the unit keeps the configuration it had when it joined if you remove %s yourself)", err, ClusterFile)
	}
	defer st.Close()
	local := st.(*store.Split).Local
	if _, err := copyKeys(ctx, et, local, sharedPrefixes); err != nil {
		return fmt.Errorf("copy the cluster's configuration into this unit: %w", err)
	}
	// A pending apply belongs to the cluster; alone, the unit starts on
	// the saved version.
	if err := local.Delete(ctx, "config/state"); err != nil {
		return err
	}
	_ = et.Delete(ctx, lifecycle.MembersPrefix+sf.unit)
	if err := os.Remove(filepath.Join(c.Data, ClusterFile)); err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "unit %s left the cluster; it runs alone on the cluster's configuration from its next start\n", sf.unit)
	return nil
}

// copyKeys copies every key under prefixes from one store to another,
// replacing what the target had under them; it returns how many.
func copyKeys(ctx context.Context, from, to store.Store, prefixes []string) (int, error) {
	n := 0
	for _, p := range prefixes {
		kvs, err := from.List(ctx, p)
		if err != nil {
			return n, err
		}
		old, err := to.List(ctx, p)
		if err != nil {
			return n, err
		}
		keep := map[string]bool{}
		for _, kv := range kvs {
			keep[kv.Key] = true
			if err := to.Put(ctx, kv.Key, kv.Value); err != nil {
				return n, err
			}
			n++
		}
		for _, kv := range old {
			if !keep[kv.Key] {
				if err := to.Delete(ctx, kv.Key); err != nil {
					return n, err
				}
			}
		}
	}
	return n, nil
}
