package lifecycle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
)

// Store keys of the lifecycle (see the layout in package store).
const (
	keyPreliminary = "config/preliminary"
	keySavedPrefix = "config/saved/"
	keyState       = "config/state"
)

// savedKey zero-pads n so that List returns versions in order.
func savedKey(n int) string { return fmt.Sprintf("%s%010d", keySavedPrefix, n) }

// savedRecord is one saved version as stored: metadata plus the document.
// Saved records are written once, in the same transaction that makes them
// the start-up configuration, and never changed afterwards.
type savedRecord struct {
	Version
	Config json.RawMessage `json:"config"`
}

// pendingRecord is an applied configuration waiting for confirmation.
type pendingRecord struct {
	Config json.RawMessage `json:"config"`
	// Base is the saved version that ran before the apply and runs again on
	// revert.
	Base     int       `json:"base"`
	Author   string    `json:"author"`
	Deadline time.Time `json:"deadline"`
	// Applied is false while the applier is still switching the unit (in
	// a cluster: until every unit reported).
	Applied bool `json:"applied"`
	// ID and Unit name a cluster's apply and the unit it was started on.
	ID   string `json:"id,omitempty"`
	Unit string `json:"unit,omitempty"`
}

// stateRecord is config/state.
type stateRecord struct {
	Pending          *pendingRecord `json:"pending,omitempty"`
	LastApplyError   string         `json:"last_apply_error,omitempty"`
	LastRevertReason string         `json:"last_revert_reason,omitempty"`
}

// etagOf is the ETag of a stored preliminary document (hex, no quotes).
func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func readState(ctx context.Context, r store.Reader) (stateRecord, error) {
	var st stateRecord
	b, err := r.Get(ctx, keyState)
	if errors.Is(err, store.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("lifecycle: %s is damaged: %w", keyState, err)
	}
	return st, nil
}

func writeState(ctx context.Context, w store.Writer, st stateRecord) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return w.Put(ctx, keyState, b)
}

// latestSaved returns the newest saved record; store.ErrNotFound when there
// is none.
func latestSaved(ctx context.Context, r store.Reader) (savedRecord, error) {
	kvs, err := r.List(ctx, keySavedPrefix)
	if err != nil {
		return savedRecord{}, err
	}
	if len(kvs) == 0 {
		return savedRecord{}, fmt.Errorf("no saved configuration: %w", store.ErrNotFound)
	}
	return decodeSaved(kvs[len(kvs)-1])
}

func decodeSaved(kv store.KV) (savedRecord, error) {
	var rec savedRecord
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		return rec, fmt.Errorf("lifecycle: %s is damaged: %w", kv.Key, err)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(kv.Key, keySavedPrefix))
	if err != nil || n != rec.Number {
		return rec, fmt.Errorf("lifecycle: %s holds version %d", kv.Key, rec.Number)
	}
	return rec, nil
}

func readSaved(ctx context.Context, r store.Reader, n int) (savedRecord, error) {
	b, err := r.Get(ctx, savedKey(n))
	if err != nil {
		return savedRecord{}, fmt.Errorf("version %d: %w", n, err)
	}
	return decodeSaved(store.KV{Key: savedKey(n), Value: b})
}

// decodeDoc decodes a stored document. Stored documents were valid when
// written; they are decoded strictly all the same, so that a damaged record
// is an error rather than a silently different configuration.
func decodeDoc(what string, b []byte) (*config.Config, error) {
	c, err := config.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: stored %s does not decode: %w", what, err)
	}
	return c, nil
}

// StartupConfig returns the configuration a unit starts on: the newest
// saved version, never an applied one that was not confirmed. It returns an
// error wrapping store.ErrNotFound when the store holds no saved version
// yet (call Bootstrap then).
func StartupConfig(ctx context.Context, st store.Reader) (*config.Config, Version, error) {
	rec, err := latestSaved(ctx, st)
	if err != nil {
		return nil, Version{}, err
	}
	c, err := decodeDoc(fmt.Sprintf("version %d", rec.Number), rec.Config)
	if err != nil {
		return nil, Version{}, err
	}
	return c, rec.Version, nil
}

// ErrAlreadyBootstrapped is returned by Bootstrap when the store already
// holds a saved configuration.
var ErrAlreadyBootstrapped = errors.New("the data directory already holds a saved configuration")

// Bootstrap makes cfg saved version 1 and the preliminary configuration of
// an empty store, in one transaction. cfg must validate.
func Bootstrap(ctx context.Context, st store.Store, cfg *config.Config, author string) error {
	if errs := cfg.Validate(); errs != nil {
		return errs
	}
	doc, err := config.Encode(cfg)
	if err != nil {
		return err
	}
	rec, err := json.Marshal(savedRecord{
		Version: Version{Number: 1, Time: time.Now().UTC(), Author: author, Comment: "initial configuration"},
		Config:  doc,
	})
	if err != nil {
		return err
	}
	err = st.Update(ctx, func(tx store.Tx) error {
		kvs, err := tx.List(ctx, keySavedPrefix)
		if err != nil {
			return err
		}
		if len(kvs) > 0 {
			return ErrAlreadyBootstrapped
		}
		if err := tx.Put(ctx, savedKey(1), rec); err != nil {
			return err
		}
		if err := tx.Put(ctx, keyPreliminary, doc); err != nil {
			return err
		}
		return writeState(ctx, tx, stateRecord{})
	})
	if err != nil {
		return fmt.Errorf("lifecycle: bootstrap: %w", err)
	}
	return st.Audit(ctx, store.AuditEntry{Author: author, Action: "config.bootstrap", Detail: "saved version 1 (initial configuration)"})
}
