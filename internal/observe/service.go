package observe

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe/alarms"
	"github.com/palisade-sbc/palisade/internal/observe/history"
	"github.com/palisade-sbc/palisade/internal/store"
)

// SubsystemName is the name the observe service has in the unit (in logs
// and apply errors).
const SubsystemName = "observe"

// pruneInterval is how often old call records are deleted.
const pruneInterval = time.Hour

// Service is the observe part of the running unit (a unit.Subsystem): the
// trace store, the call recorder, the status sources and the log level,
// all following the observe section of the configuration.
type Service struct {
	Traces   *Traces
	Recorder *Recorder
	Sources  StatusSources
	// Peers dates the changes of the peers' OPTIONS state (the SIP layer
	// keeps only the current one); the composition root sets its source.
	Peers PeerChanges
	// History is the per-minute traffic of the last day (dashboard graphs).
	History *history.Ring
	// Alarms are evaluated every few seconds from the peers' states and
	// the unit's metrics.
	Alarms  *alarms.Engine
	watcher *alarms.Watcher

	st    store.Store
	log   *slog.Logger
	level *slog.LevelVar // may be nil: the level is then not managed here

	traceCDRs chan struct{} // bounds the records written from traces at once
	media     mediaTracker

	alarmMu sync.Mutex // one evaluation at a time (raise times stay ordered)

	mu        sync.Mutex
	retention time.Duration
	stop      chan struct{}
	done      chan struct{}
}

// New returns the service. level is the LevelVar of the unit's logger
// (NewLogger returns it); nil leaves log levels alone.
func New(st store.Store, log *slog.Logger, level *slog.LevelVar) *Service {
	if log == nil {
		log = slog.Default()
	}
	def := config.Default().Observe
	s := &Service{st: st, log: log, level: level, retention: def.CDRRetention.D()}
	s.Traces = NewTraces(def.TraceBufferCalls, def.TraceFailedKeep.D())
	s.Recorder = NewRecorder(st, s.Traces, log)
	s.History = new(history.Ring)
	s.Recorder.hist = s.History
	s.Alarms = alarms.NewEngine()
	s.watcher = alarms.NewWatcher(prometheus.DefaultGatherer)
	s.traceCDRs = make(chan struct{}, maxPendingTraceCDRs)
	s.Traces.onEnd = s.recordTraceEnd
	s.Traces.countCalls.Store(true)
	s.Sources.Register(StatusSource{Kind: StatusCalls, Status: func(context.Context) (any, error) {
		if s.Recorder.reported.Load() {
			active := s.Recorder.Active()
			// The SIP layer anchors a call's media before it reports the
			// call, so the recorder may hold no counters of it: the live ones.
			for i := range active {
				if active[i].Media == ([2]MediaLeg{}) {
					active[i].Media, _ = s.mediaOf(active[i].ID, false)
				}
			}
			return active, nil
		}
		return s.activeFromTraces(), nil
	}})
	return s
}

// Name implements unit.Subsystem.
func (s *Service) Name() string { return SubsystemName }

// Apply follows cfg.Observe: log level, trace ring size and failed-call
// keep time, call record retention. Nothing here can half-apply: the level
// is checked before anything changes.
func (s *Service) Apply(ctx context.Context, cfg *config.Config) error {
	o := cfg.Observe
	lvl, err := ParseLevel(o.LogLevel)
	if err != nil {
		return fmt.Errorf("observe.log_level: %w", err)
	}
	if s.level != nil {
		s.level.Set(lvl)
	}
	s.Traces.SetEnabled(o.TraceCalls && o.TraceBufferCalls > 0) // 0 calls: keep none
	s.Traces.SetLimits(o.TraceBufferCalls, o.TraceFailedKeep.D())
	s.mu.Lock()
	s.retention = o.CDRRetention.D()
	if s.stop == nil {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.pruneLoop(s.stop, s.done)
	}
	s.mu.Unlock()
	return nil
}

// Prune deletes call records older than the retention now; 0 retention
// keeps records forever.
func (s *Service) Prune(ctx context.Context) (int, error) {
	s.mu.Lock()
	keep := s.retention
	s.mu.Unlock()
	if keep <= 0 {
		return 0, nil
	}
	return PruneCDRs(ctx, s.st, time.Now().Add(-keep))
}

func (s *Service) pruneLoop(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	peers := time.NewTicker(peerSampleInterval)
	defer peers.Stop()
	var lastAlarms time.Time
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if n, err := s.Prune(ctx); err != nil {
			s.log.Warn("pruning old call records failed", "err", err)
		} else if n > 0 {
			s.log.Info("old call records deleted", "count", n)
		}
		cancel()
		for waiting := true; waiting; {
			select {
			case <-stop:
				return
			case now := <-peers.C:
				s.Peers.sample(now)
				if now.Sub(lastAlarms) >= alarmInterval {
					s.EvaluateAlarms(now)
					lastAlarms = now
				}
			case <-t.C:
				waiting = false
			}
		}
	}
}

// ExplainAlarms gives the alarms of kind more words than their metric
// holds (alarms.Watcher.Explain): the composition root passes the ACME
// manager's last CA error for acme_failing.
func (s *Service) ExplainAlarms(kind string, fn func(subject string) string) {
	s.watcher.Explain(kind, fn)
}

// alarmInterval is how often the alarms are evaluated.
const alarmInterval = 5 * time.Second

// EvaluateAlarms updates the alarms from the latest peer states and the
// metrics (the service does it every few seconds; the dashboard and the
// API call it too, so what they show is current).
func (s *Service) EvaluateAlarms(now time.Time) {
	s.alarmMu.Lock()
	defer s.alarmMu.Unlock()
	conds := s.watcher.Conditions(now)
	for _, p := range s.Peers.Last() {
		if p.State != PeerDown {
			continue
		}
		text := "peer " + p.Name + " does not answer"
		if p.LastError != "" {
			text += ": " + p.LastError
		}
		conds = append(conds, alarms.Condition{Kind: alarms.PeerDown, Subject: p.Name, Severity: alarms.Major, Text: text})
	}
	s.Alarms.Update(now, conds)
}

// Drain implements unit.Subsystem; observing needs no draining.
func (s *Service) Drain(context.Context) error { return nil }

// Close stops the pruning and writes the call records still queued.
func (s *Service) Close() error {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.stop, s.done = nil, nil
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	// Wait for records still being written from traces.
	for range cap(s.traceCDRs) {
		s.traceCDRs <- struct{}{}
	}
	for range cap(s.traceCDRs) {
		<-s.traceCDRs
	}
	s.Recorder.Close()
	return nil
}
