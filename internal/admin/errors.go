package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/store"
)

// Error is an error with the HTTP status it should be answered with.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the given status.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// ErrUnitStopped answers requests that need the running unit when the
// handler serves a stopped unit's data directory.
var ErrUnitStopped = &Error{Status: http.StatusConflict,
	Message: "the unit is not running (no admin.sock in the data directory); start it with 'palisade run' first"}

var errUnauthorized = &Error{Status: http.StatusUnauthorized, Message: "log in or send an API token (Authorization: Bearer ...)"}

// errorBody is the JSON of every error answer. Errors lists every field
// problem of a configuration document (422).
type errorBody struct {
	Error  string              `json:"error"`
	Errors []config.FieldError `json:"errors,omitempty"`
}

// statusOf is the one place that maps errors to HTTP statuses.
func statusOf(err error) int {
	var ae *Error
	var fe config.Errors
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &ae):
		return ae.Status
	case errors.As(err, &fe):
		return http.StatusUnprocessableEntity
	case errors.Is(err, lifecycle.ErrPreconditionFailed):
		return http.StatusPreconditionFailed
	case errors.Is(err, lifecycle.ErrNoPendingApply),
		errors.Is(err, lifecycle.ErrNothingToApply),
		errors.Is(err, lifecycle.ErrApplyPending):
		return http.StatusConflict
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, lifecycle.ErrStoreBehind):
		return http.StatusServiceUnavailable // a cluster unit cut off from etcd, or etcd behind it
	case errors.Is(err, store.ErrConflict), errors.Is(err, lifecycle.ErrApplyFailed), errors.Is(err, lifecycle.ErrVersionSkew):
		return http.StatusConflict
	case errors.Is(err, lifecycle.ErrBadPassphrase), errors.Is(err, lifecycle.ErrBackupPassphrase):
		return http.StatusBadRequest
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.As(err, &se), errors.As(err, &te), errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// writeError answers err as JSON with the status statusOf gives it.
func writeError(env *Env, w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	body := errorBody{Error: err.Error()}
	var fe config.Errors
	if errors.As(err, &fe) {
		body.Errors = fe
		body.Error = fmt.Sprintf("the configuration has %d error(s)", len(fe))
	}
	if status >= 500 {
		apiErrors.WithLabelValues("5xx").Inc()
		if env != nil && env.Log != nil {
			env.Log.Error("admin API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		if status != http.StatusServiceUnavailable {
			body.Error = "internal error: " + err.Error()
		}
	} else {
		apiErrors.WithLabelValues("4xx").Inc()
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="palisade"`)
	}
	_ = JSON(w, status, body)
}

// JSON writes v as the JSON answer with the given status.
func JSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// maxBody bounds every request body the API reads.
const maxBody = 16 << 20

// DecodeJSON reads the request body into v strictly: unknown fields and
// trailing data are errors (400).
func DecodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return Errorf(http.StatusBadRequest, "the request body is empty; JSON expected")
		}
		return Errorf(http.StatusBadRequest, "bad JSON in request: %v", err)
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, "bad JSON in request: data after the first value")
	}
	return nil
}
