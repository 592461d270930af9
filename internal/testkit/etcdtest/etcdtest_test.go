package etcdtest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestShortLeases: a lease of 1 s is granted as 1 s with ShortLeases, and
// raised to etcd's minimum of 2 s without it.
func TestShortLeases(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want int64
	}{
		{"default", nil, 2},
		{"short", []Option{ShortLeases()}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Start(t, 1, tc.opts...)
			cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			g, err := cli.Grant(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			ttl, err := cli.TimeToLive(ctx, g.ID)
			if err != nil {
				t.Fatal(err)
			}
			if g.TTL != tc.want || ttl.GrantedTTL != tc.want {
				t.Errorf("a lease of 1 s: granted %d s (TimeToLive: granted %d s), want %d s", g.TTL, ttl.GrantedTTL, tc.want)
			}
		})
	}
}
