package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/store"
)

// peerKeyKey holds the secret with which the units of a cluster sign the
// requests they make to each other's admin API.
const peerKeyKey = "cluster/admin-peer-key"

// maxSkew is how far a signed request's time may be from the receiver's.
const maxSkew = 60 * time.Second

// Peers lets a unit's admin API ask the other units (admin.UnitPeers):
// each unit publishes its admin address in its membership key; a request
// carries admin.UnitHeader with a MAC (HMAC-SHA256 with the shared secret)
// over the unit, the time, the method and the path with query. The admin
// listeners' certificates are each unit's own, not checked here: the MAC
// authenticates the asker, and what is asked is read-only.
type Peers struct {
	Etcd *store.Etcd
	Name string

	mu  sync.Mutex
	key []byte
	hc  *http.Client
}

var _ admin.UnitPeers = (*Peers)(nil)

// Unit implements admin.UnitPeers.
func (p *Peers) Unit() string { return p.Name }

func (p *Peers) secret(ctx context.Context) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.key != nil {
		return p.key, nil
	}
	k, err := store.SharedSecret(ctx, p.Etcd, peerKeyKey)
	if err != nil {
		return nil, fmt.Errorf("cluster: the units' shared secret: %w", err)
	}
	p.key = k
	return k, nil
}

func peerMAC(key []byte, unit, ts, method, pathQuery string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(unit + "\n" + ts + "\n" + method + "\n" + pathQuery))
	return hex.EncodeToString(m.Sum(nil))
}

// Verify implements admin.UnitPeers.
func (p *Peers) Verify(r *http.Request) (string, error) {
	f := strings.Fields(r.Header.Get(admin.UnitHeader))
	if len(f) != 3 {
		return "", errors.New("malformed unit signature")
	}
	unit, ts, mac := f[0], f[1], f[2]
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", errors.New("malformed unit signature")
	}
	if d := time.Since(time.Unix(sec, 0)); d > maxSkew || d < -maxSkew {
		return "", fmt.Errorf("unit signature from %s is %s off this unit's clock (at most %s)", unit, d.Round(time.Second), maxSkew)
	}
	key, err := p.secret(r.Context())
	if err != nil {
		return "", err
	}
	if !hmac.Equal([]byte(mac), []byte(peerMAC(key, unit, ts, r.Method, r.URL.RequestURI()))) {
		return "", fmt.Errorf("unit signature from %q does not verify", unit)
	}
	return unit, nil
}

// Get implements admin.UnitPeers.
func (p *Peers) Get(ctx context.Context, pathQuery string) (map[string][]byte, map[string]error) {
	bodies, failed := map[string][]byte{}, map[string]error{}
	key, err := p.secret(ctx)
	kvs, lerr := p.Etcd.List(ctx, lifecycle.MembersPrefix)
	if err == nil {
		err = lerr
	}
	if err != nil {
		failed["cluster"] = err
		return bodies, failed
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, kv := range kvs {
		var m Member
		if json.Unmarshal(kv.Value, &m) != nil || m.Unit == p.Name {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := p.get(ctx, key, m, pathQuery)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[m.Unit] = err
			} else {
				bodies[m.Unit] = b
			}
		}()
	}
	wg.Wait()
	return bodies, failed
}

func (p *Peers) get(ctx context.Context, key []byte, m Member, pathQuery string) ([]byte, error) {
	host, _, err := net.SplitHostPort(m.Admin)
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		return nil, fmt.Errorf("no usable admin address published (%q): set units.%s.admin_listen to an address the units reach", m.Admin, m.Unit)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+m.Admin+pathQuery, nil)
	if err != nil {
		return nil, err
	}
	p.sign(req, key, time.Now())
	resp, err := p.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b[:min(len(b), 300)])))
	}
	return b, nil
}

// sign sets req's admin.UnitHeader for the time at.
func (p *Peers) sign(req *http.Request, key []byte, at time.Time) {
	ts := strconv.FormatInt(at.Unix(), 10)
	req.Header.Set(admin.UnitHeader, p.Name+" "+ts+" "+peerMAC(key, p.Name, ts, req.Method, req.URL.RequestURI()))
}

func (p *Peers) client() *http.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hc == nil {
		p.hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			// each unit's admin certificate is its own; the MAC authenticates
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec
		}}
	}
	return p.hc
}
