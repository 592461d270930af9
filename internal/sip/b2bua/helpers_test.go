package b2bua

import (
	"context"
	"testing"
	"time"
)

func sleepMS(n int) { time.Sleep(time.Duration(n) * time.Millisecond) }

func t0() context.Context { return context.Background() }

// recv receives from ch. A value that never comes fails the test after a
// minute (far beyond any exchange here) instead of hanging the package
// until go test's timeout.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("gave up waiting for %s", what)
		var zero T
		return zero
	}
}
