package store

import (
	"sort"
	"strings"
)

// overlay is what a transaction lists: the committed keys under prefix
// (base) with the transaction's own pending writes (nil = deleted) laid
// over them, in key order; nil when nothing is left.
func overlay(base []KV, writes map[string][]byte, prefix string) []KV {
	merged := map[string][]byte{}
	for _, kv := range base {
		merged[kv.Key] = kv.Value
	}
	for k, v := range writes {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if v == nil {
			delete(merged, k)
		} else {
			merged[k] = clone(v)
		}
	}
	if len(merged) == 0 {
		return nil
	}
	out := make([]KV, 0, len(merged))
	for k, v := range merged {
		out = append(out, KV{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
