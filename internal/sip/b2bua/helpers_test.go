package b2bua

import (
	"context"
	"time"
)

func sleepMS(n int) { time.Sleep(time.Duration(n) * time.Millisecond) }

func t0() context.Context { return context.Background() }
