package store

import (
	"context"
	"crypto/rand"
	"errors"
)

// SharedSecret returns the 32-byte secret under key, making it when there
// is none: the units of a cluster all get the one the first of them made.
func SharedSecret(ctx context.Context, st Store, key string) ([]byte, error) {
	var out []byte
	err := st.Update(ctx, func(tx Tx) error {
		k, err := tx.Get(ctx, key)
		if err == nil && len(k) == 32 {
			out = k
			return nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		out = make([]byte, 32)
		_, _ = rand.Read(out)
		return tx.Put(ctx, key, out)
	})
	return out, err
}
