package cli

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
)

// storeFlags are the flags of `palisade run` that choose the store (SPEC
// §4.1): the data directory's SQLite alone (the default), or a cluster's
// etcd for what the units share plus the SQLite for what stays local.
type storeFlags struct {
	url, unit     string
	ca, cert, key string
}

func (f *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "store", os.Getenv("PALISADE_STORE"), "etcd://HOST:PORT[,HOST:PORT...] for a cluster of units")
	fs.StringVar(&f.unit, "unit", os.Getenv("PALISADE_UNIT"), "this unit's name in the cluster (default: the host name)")
	fs.StringVar(&f.ca, "store-ca", os.Getenv("PALISADE_STORE_CA"), "CA certificate (PEM) of etcd's TLS")
	fs.StringVar(&f.cert, "store-cert", os.Getenv("PALISADE_STORE_CERT"), "client certificate (PEM) towards etcd")
	fs.StringVar(&f.key, "store-key", os.Getenv("PALISADE_STORE_KEY"), "client key (PEM) towards etcd")
}

// clustered reports whether the unit shares its state on etcd.
func (f *storeFlags) clustered() bool { return f.url != "" && f.url != "sqlite" }

// check validates the flags before anything is opened.
func (f *storeFlags) check() error {
	if !f.clustered() {
		if f.unit != "" || f.ca != "" || f.cert != "" || f.key != "" {
			return fmt.Errorf("--unit and --store-ca/--store-cert/--store-key need --store etcd://...")
		}
		return nil
	}
	if _, _, err := store.ParseStoreURL(f.url); err != nil {
		return err
	}
	if f.unit == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return fmt.Errorf("--unit: no name given and no host name to use")
		}
		f.unit = h
	}
	if !config.ValidUnitName(f.unit) {
		return fmt.Errorf("--unit %q: use letters, digits, '-', '_' and '.' (at most 63)", f.unit)
	}
	return nil
}

// open opens the unit's store: the SQLite in dir, and for a cluster the
// etcd store in front of it (store.Split). etcd is the single source of
// the shared keys: nothing of them is read from the SQLite.
func (f *storeFlags) open(ctx context.Context, dir string) (store.Store, *store.Etcd, error) {
	local, err := store.Open(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("open store in %s: %w", dir, err)
	}
	if !f.clustered() {
		return local, nil, nil
	}
	eps, ns, err := store.ParseStoreURL(f.url)
	if err != nil {
		local.Close()
		return nil, nil, err
	}
	tlsCfg, err := store.ClientTLS(f.ca, f.cert, f.key)
	if err != nil {
		local.Close()
		return nil, nil, err
	}
	et, err := store.OpenEtcd(ctx, store.EtcdOptions{Endpoints: eps, Namespace: ns, TLS: tlsCfg})
	if err != nil {
		local.Close()
		return nil, nil, err
	}
	return store.NewSplit(et, local, store.LocalPrefixes...), et, nil
}
