package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
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
