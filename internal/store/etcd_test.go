package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
)

func TestParseStoreURL(t *testing.T) {
	tests := []struct {
		in      string
		eps     []string
		ns      string
		wantErr bool
	}{
		{"etcd://127.0.0.1:2379", []string{"127.0.0.1:2379"}, "", false},
		{"etcd://a:1,b:2, c:3/prod", []string{"a:1", "b:2", "c:3"}, "prod/", false},
		{"etcd://[::1]:2379/x/", []string{"[::1]:2379"}, "x/", false},
		{"http://127.0.0.1:2379", nil, "", true},
		{"etcd://127.0.0.1", nil, "", true},
		{"etcd://a:1,,b:2", nil, "", true},
		{"etcd://", nil, "", true},
		{"etcd://:2379", nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			eps, ns, err := ParseStoreURL(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (fmt.Sprint(eps) != fmt.Sprint(tt.eps) || ns != tt.ns) {
				t.Fatalf("= %q %q, want %q %q", eps, ns, tt.eps, tt.ns)
			}
		})
	}
}

// TestOpenEtcdDown: an endpoint where nothing answers gives ErrUnavailable
// once the request bound has passed, not a hang.
func TestOpenEtcdDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = OpenEtcd(context.Background(), EtcdOptions{Endpoints: []string{addr}, OpTimeout: time.Second})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("OpenEtcd(%s) = %v, want ErrUnavailable", addr, err)
	}
}

// TestOpenEtcdSlow: an endpoint that accepts connections and never answers
// (a hung etcd) also ends in ErrUnavailable.
func TestOpenEtcdSlow(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	_, err = OpenEtcd(context.Background(), EtcdOptions{Endpoints: []string{l.Addr().String()}, OpTimeout: time.Second})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("OpenEtcd = %v, want ErrUnavailable", err)
	}
}

// slowProxy forwards TCP to target, holding every chunk for delay in both
// directions: an etcd that answers each request about 2×delay late.
func slowProxy(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	pipe := func(dst, src net.Conn) {
		defer dst.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				time.Sleep(delay)
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	return l.Addr().String()
}

// TestEtcdSlow: an etcd answering a second late in each direction is slow,
// not broken: reads, writes and transactions succeed within a bound that
// allows for it; with a tighter bound they fail with ErrUnavailable.
func TestEtcdSlow(t *testing.T) {
	if _, err := exec.LookPath("etcd"); err != nil {
		t.Skip("install Debian package etcd-server")
	}
	c := etcdtest.Start(t, 1)
	proxy := slowProxy(t, c.Endpoints()[0], time.Second)
	ctx := context.Background()
	s, err := OpenEtcd(ctx, EtcdOptions{Endpoints: []string{proxy}, Namespace: "slow/", OpTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx Tx) error {
		v, err := tx.Get(ctx, "k")
		if err != nil {
			return err
		}
		return tx.Put(ctx, "k2", append(v, '2'))
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "k2"); err != nil || string(v) != "v2" {
		t.Fatalf("Get k2 = %q %v", v, err)
	}
	tight, err := OpenEtcd(ctx, EtcdOptions{Endpoints: []string{proxy}, Namespace: "slow/", OpTimeout: 500 * time.Millisecond})
	if err == nil {
		defer tight.Close()
		_, err = tight.Get(ctx, "k")
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("with a 500 ms bound: %v, want ErrUnavailable", err)
	}
}
