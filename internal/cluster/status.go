package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
)

// SubsystemName is the Node's name in the unit.
const SubsystemName = "cluster"

// Name, Apply, Drain and Close make the Node a unit.Subsystem, so that the
// admin API finds it (it has nothing to configure).
func (n *Node) Name() string                                { return SubsystemName }
func (n *Node) Apply(context.Context, *config.Config) error { return nil }
func (n *Node) Drain(context.Context) error                 { return nil }
func (n *Node) Close() error                                { return nil }

// Status is the cluster as one unit sees it (GET /api/v1/cluster, the
// "cluster" section of GET /api/v1/status).
type Status struct {
	Clustered bool   `json:"clustered"`
	Unit      string `json:"unit,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// Leader is the unit elected to enforce confirmation deadlines.
	Leader string       `json:"confirmation_timer_leader,omitempty"`
	Units  []UnitStatus `json:"units,omitempty"`
	Etcd   []EtcdMember `json:"etcd,omitempty"`
	// Error says what could not be read (etcd unreachable: the unit keeps
	// serving and refuses configuration changes).
	Error string `json:"error,omitempty"`
}

// UnitStatus is one live unit.
type UnitStatus struct {
	Member
	// Healthy: the unit published within three publishing intervals.
	Healthy bool `json:"healthy"`
	Self    bool `json:"self,omitempty"`
}

// EtcdMember is one member of the etcd cluster.
type EtcdMember struct {
	Name       string   `json:"name"`
	ID         string   `json:"id"`
	ClientURLs []string `json:"client_urls"`
	Healthy    bool     `json:"healthy"`
	Leader     bool     `json:"leader,omitempty"`
	Version    string   `json:"version,omitempty"`
	DBSize     int64    `json:"db_size,omitempty"`
	Error      string   `json:"error,omitempty"`
}

// Status reads the cluster's state, each part bounded in time.
func (n *Node) Status(ctx context.Context) Status {
	st := Status{Clustered: true, Unit: n.Unit, Namespace: n.Etcd.Namespace()}
	var errs []string
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if l, err := Leader(ctx, n.Etcd); err != nil {
		errs = append(errs, err.Error())
	} else {
		st.Leader = l
	}
	kvs, err := n.Etcd.List(ctx, lifecycle.MembersPrefix)
	if err != nil {
		errs = append(errs, err.Error())
	}
	every := n.PublishEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	for _, kv := range kvs {
		var m Member
		if json.Unmarshal(kv.Value, &m) != nil {
			continue
		}
		st.Units = append(st.Units, UnitStatus{Member: m, Healthy: time.Since(m.Updated) < 3*every, Self: m.Unit == n.Unit})
	}
	sort.Slice(st.Units, func(i, j int) bool { return st.Units[i].Unit < st.Units[j].Unit })
	cli := n.Etcd.Client()
	ml, err := cli.MemberList(ctx)
	if err != nil {
		errs = append(errs, "etcd member list: "+err.Error())
	} else {
		for _, m := range ml.Members {
			em := EtcdMember{Name: m.Name, ID: fmt.Sprintf("%x", m.ID), ClientURLs: m.ClientURLs}
			if len(m.ClientURLs) > 0 {
				if s, err := cli.Status(ctx, m.ClientURLs[0]); err != nil {
					em.Error = err.Error()
				} else {
					em.Healthy = true
					em.Leader = s.Leader == m.ID
					em.Version = s.Version
					em.DBSize = s.DbSize
				}
			}
			st.Etcd = append(st.Etcd, em)
		}
	}
	st.Error = strings.Join(errs, "; ")
	return st
}

func statusOf(env *admin.Env, r *http.Request) (any, error) {
	if env.Live != nil && env.Live.Cluster != nil {
		return env.Live.Cluster(r.Context()), nil
	}
	return Status{Clustered: false}, nil
}

func init() {
	admin.RegisterStatus("cluster", statusOf)
	admin.RegisterRoutes(func(rt *admin.Routes) {
		rt.API("GET /api/v1/cluster", func(env *admin.Env, w http.ResponseWriter, r *http.Request) error {
			st, err := statusOf(env, r)
			if err != nil {
				return err
			}
			return admin.JSON(w, http.StatusOK, st)
		})
	})
}
