package store

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrUnavailable wraps the errors of a clustered store that cannot reach
// a quorum of etcd (down, partitioned, or answering too slowly).
var ErrUnavailable = errors.New("the cluster store (etcd) is unavailable")

// DefaultNamespace is the etcd key prefix of a cluster's data when the
// store URL names none.
const DefaultNamespace = "palisade/"

// EtcdOptions says how to reach etcd.
type EtcdOptions struct {
	Endpoints []string // host:port
	// Namespace prefixes every key in etcd (default DefaultNamespace), so
	// that one etcd can hold several clusters.
	Namespace string
	// TLS, when set, is used towards etcd (client certificates).
	TLS *tls.Config
	// OpTimeout bounds one request (default 5 s): a unit whose etcd is
	// down or slow gets ErrUnavailable instead of hanging.
	OpTimeout time.Duration
	// AuditMaxEntries and AuditMaxAge bound the shared audit log (default
	// DefaultAuditMaxEntries, DefaultAuditMaxAge): etcd keeps its whole
	// key space in memory and caps its size.
	AuditMaxEntries int
	AuditMaxAge     time.Duration
}

// ParseStoreURL splits etcd://HOST:PORT[,HOST:PORT...][/NAMESPACE] into
// endpoints and namespace ("" = DefaultNamespace).
func ParseStoreURL(s string) (endpoints []string, namespace string, err error) {
	rest, ok := strings.CutPrefix(s, "etcd://")
	if !ok {
		return nil, "", fmt.Errorf("store %q: want etcd://HOST:PORT[,HOST:PORT...]", s)
	}
	hosts, ns, _ := strings.Cut(rest, "/")
	for _, h := range strings.Split(hosts, ",") {
		h = strings.TrimSpace(h)
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" || port == "" {
			return nil, "", fmt.Errorf("store %q: endpoint %q is not HOST:PORT", s, h)
		}
		endpoints = append(endpoints, h)
	}
	if ns != "" && !strings.HasSuffix(ns, "/") {
		ns += "/"
	}
	return endpoints, ns, nil
}

// ClientTLS builds the TLS configuration towards etcd from PEM files: ca
// (the CA that signed etcd's certificates; "" = the system roots) and an
// optional client certificate and key.
func ClientTLS(ca, cert, key string) (*tls.Config, error) {
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		b, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("store CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("store CA %s: no PEM certificate in it", ca)
		}
		c.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return nil, errors.New("store client certificate: --store-cert and --store-key go together")
	}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("store client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c, nil
}

// Etcd is the Store of a cluster of units: every key lives in etcd under
// NAMESPACE/kv/, the audit log under NAMESPACE/audit/. Safe for concurrent
// use.
type Etcd struct {
	cli       *clientv3.Client
	ns        string
	opTimeout time.Duration
	auditMax  int
	auditAge  time.Duration
}

var _ Store = (*Etcd)(nil)

// OpenEtcd connects to etcd and checks that it answers.
func OpenEtcd(ctx context.Context, o EtcdOptions) (*Etcd, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("store: no etcd endpoint")
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            o.Endpoints,
		DialTimeout:          o.OpTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		TLS:                  o.TLS,
		Logger:               zap.NewNop(),
		Context:              context.WithoutCancel(ctx),
	})
	if err != nil {
		return nil, fmt.Errorf("store: etcd %s: %w", strings.Join(o.Endpoints, ","), err)
	}
	e := &Etcd{cli: cli, ns: o.Namespace, opTimeout: o.OpTimeout,
		auditMax: cmp.Or(o.AuditMaxEntries, DefaultAuditMaxEntries), auditAge: cmp.Or(o.AuditMaxAge, DefaultAuditMaxAge)}
	cctx, cancel := e.opCtx(ctx)
	defer cancel()
	if _, err := cli.Get(cctx, e.ns+"kv/", clientv3.WithCountOnly()); err != nil {
		cli.Close()
		return nil, e.wrap("connect to", strings.Join(o.Endpoints, ","), err)
	}
	return e, nil
}

// Client is the etcd client, for cluster coordination (elections, member
// lists); Namespace is the prefix of this cluster's keys.
func (e *Etcd) Client() *clientv3.Client { return e.cli }

// Namespace is the etcd key prefix of this cluster.
func (e *Etcd) Namespace() string { return e.ns }

func (e *Etcd) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.opTimeout)
}

func (e *Etcd) k(key string) string { return e.ns + "kv/" + key }

// Key is the etcd key under which key of this store lives, for keys the
// cluster package writes with its own leases.
func (e *Etcd) Key(key string) string { return e.k(key) }

// wrap gives etcd errors context; failures to reach a quorum wrap
// ErrUnavailable.
func (e *Etcd) wrap(op, key string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("store: %s %s: %w", op, key, err)
	}
	code := status.Code(err)
	// A request cut off by its deadline sometimes comes back as Unknown
	// with the deadline in the text.
	msg := err.Error()
	timedOut := code == codes.Unknown && (strings.Contains(msg, "deadline exceeded") || strings.Contains(msg, "timed out") ||
		strings.Contains(msg, "no leader"))
	if errors.Is(err, context.DeadlineExceeded) || code == codes.Unavailable || code == codes.DeadlineExceeded || timedOut ||
		errors.Is(err, rpctypes.ErrNoLeader) || errors.Is(err, rpctypes.ErrTimeout) ||
		errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail) || errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost) {
		return fmt.Errorf("store: %s %s: %w: %v", op, key, ErrUnavailable, err)
	}
	return fmt.Errorf("store: etcd %s %s: %w", op, key, err)
}

func value(kv *mvccpb.KeyValue) []byte {
	if kv.Value == nil {
		return []byte{}
	}
	return kv.Value
}

// Get returns the value of key, or an error wrapping ErrNotFound.
func (e *Etcd) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, _, err := e.get(ctx, key, 0)
	return v, err
}

// get reads key at revision rev (0 = newest) and returns its value, its
// ModRevision (0 when missing) and the store's revision of the read.
func (e *Etcd) get(ctx context.Context, key string, rev int64) ([]byte, int64, int64, error) {
	cctx, cancel := e.opCtx(ctx)
	defer cancel()
	var opts []clientv3.OpOption
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := e.cli.Get(cctx, e.k(key), opts...)
	if err != nil {
		return nil, 0, 0, e.wrap("get", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, resp.Header.Revision, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	return value(resp.Kvs[0]), resp.Kvs[0].ModRevision, resp.Header.Revision, nil
}

// List returns the keys with the prefix in ascending key order.
func (e *Etcd) List(ctx context.Context, prefix string) ([]KV, error) {
	kvs, _, _, err := e.list(ctx, prefix, 0)
	return kvs, err
}

func (e *Etcd) list(ctx context.Context, prefix string, rev int64) ([]KV, []int64, int64, error) {
	cctx, cancel := e.opCtx(ctx)
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := e.cli.Get(cctx, e.k(prefix), opts...)
	if err != nil {
		return nil, nil, 0, e.wrap("list", prefix, err)
	}
	var out []KV
	var revs []int64
	for _, kv := range resp.Kvs {
		out = append(out, KV{Key: strings.TrimPrefix(string(kv.Key), e.ns+"kv/"), Value: value(kv)})
		revs = append(revs, kv.ModRevision)
	}
	return out, revs, resp.Header.Revision, nil
}

// Put sets key to value once a quorum of etcd has it.
func (e *Etcd) Put(ctx context.Context, key string, value []byte) error {
	if key == "" {
		return errors.New("store: empty key")
	}
	cctx, cancel := e.opCtx(ctx)
	defer cancel()
	if _, err := e.cli.Put(cctx, e.k(key), string(value)); err != nil {
		return e.wrap("put", key, err)
	}
	return nil
}

// PutTTL sets key to value under a new etcd lease of ttl (rounded up to
// whole seconds). The lease the key held before, if any, is revoked: every
// lease of this store carries one key.
func (e *Etcd) PutTTL(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if key == "" {
		return errors.New("store: empty key")
	}
	if ttl <= 0 {
		return fmt.Errorf("store: time to live %s is not positive", ttl)
	}
	cctx, cancel := e.opCtx(ctx)
	defer cancel()
	secs := int64(math.Ceil(ttl.Seconds()))
	lease, err := e.cli.Grant(cctx, secs)
	if err != nil {
		return e.wrap("lease for", key, err)
	}
	resp, err := e.cli.Put(cctx, e.k(key), string(value), clientv3.WithLease(lease.ID), clientv3.WithPrevKV())
	if err != nil {
		_, _ = e.cli.Revoke(context.WithoutCancel(cctx), lease.ID)
		return e.wrap("put", key, err)
	}
	if resp.PrevKv != nil && resp.PrevKv.Lease != 0 && clientv3.LeaseID(resp.PrevKv.Lease) != lease.ID {
		// Not revoking only costs etcd memory until the old lease runs out.
		_, _ = e.cli.Revoke(cctx, clientv3.LeaseID(resp.PrevKv.Lease))
	}
	return nil
}

// Delete removes key; deleting a missing key is not an error.
func (e *Etcd) Delete(ctx context.Context, key string) error {
	cctx, cancel := e.opCtx(ctx)
	defer cancel()
	if _, err := e.cli.Delete(cctx, e.k(key)); err != nil {
		return e.wrap("delete", key, err)
	}
	return nil
}

// Watch reports the changes under prefix from the revision current when it
// is called. When etcd can no longer deliver a continuous history (the
// revision was compacted), an EventReset is sent and the watch starts again
// from the newest revision.
func (e *Etcd) Watch(ctx context.Context, prefix string) (<-chan Event, error) {
	rev, err := e.revision(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan Event)
	go func() {
		defer close(out)
		next := rev + 1
		for ctx.Err() == nil {
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			wch := e.cli.Watch(wctx, e.k(prefix), clientv3.WithPrefix(), clientv3.WithRev(next), clientv3.WithPrevKV())
			reset := false
			for resp := range wch {
				if err := resp.Err(); err != nil {
					reset = true
					break
				}
				for _, ev := range resp.Events {
					x := Event{Type: EventPut, Key: strings.TrimPrefix(string(ev.Kv.Key), e.ns+"kv/")}
					if ev.Type == clientv3.EventTypeDelete {
						x.Type = EventDelete
					} else {
						x.Value = value(ev.Kv)
					}
					select {
					case out <- x:
					case <-ctx.Done():
						cancel()
						return
					}
					next = ev.Kv.ModRevision + 1
				}
			}
			cancel()
			if ctx.Err() != nil {
				return
			}
			if !reset {
				// The channel closed without an error (no leader for a
				// while): wait a moment and resume where it stopped.
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
					return
				}
				continue
			}
			// Start again from what is there now; the watcher re-reads.
			for ctx.Err() == nil {
				cur, err := e.revision(ctx)
				if err == nil {
					next = cur + 1
					break
				}
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
					return
				}
			}
			select {
			case out <- Event{Type: EventReset}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// revision is etcd's current revision.
func (e *Etcd) revision(ctx context.Context) (int64, error) {
	cctx, cancel := e.opCtx(ctx)
	defer cancel()
	resp, err := e.cli.Get(cctx, e.ns+"revision", clientv3.WithCountOnly())
	if err != nil {
		return 0, e.wrap("read", "revision", err)
	}
	return resp.Header.Revision, nil
}

// Close closes the connection to etcd.
func (e *Etcd) Close() error { return e.cli.Close() }

// jitter is a short random pause between conflicting attempts.
func jitter(attempt int) time.Duration {
	d := time.Duration(1+min(attempt, 6)) * 5 * time.Millisecond
	return d + time.Duration(mrand.Int64N(int64(d)))
}
