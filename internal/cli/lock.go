package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// LockFile guards a data directory: one process (a running unit, or a CLI
// working on a stopped unit's directory) at a time. Without it a second
// `palisade run` would, on start, discard the first unit's pending apply.
const LockFile = "palisade.lock"

// lockDataDir takes the data directory's lock, failing at once when another
// process holds it. The lock goes with the returned file (or the process).
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another palisade process is using %s (a unit starting or stopping, or another command); try again", dir)
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	return f, nil
}
