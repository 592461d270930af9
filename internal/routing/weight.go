package routing

import "sort"

// OrderByPriorityWeight returns the indexes of ts in the order to try them:
// lowest priority first, and within one priority a weighted random order as
// RFC 2782 describes (entries of weight 0 get a small chance, placed first in
// the running sum as the RFC asks). intn(n) returns a random int in [0,n).
func OrderByPriorityWeight(ts []Target, intn func(int) int) []int {
	idx := make([]int, len(ts))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return ts[idx[a]].Priority < ts[idx[b]].Priority })
	out := make([]int, 0, len(ts))
	for start := 0; start < len(idx); {
		end := start
		for end < len(idx) && ts[idx[end]].Priority == ts[idx[start]].Priority {
			end++
		}
		group := append([]int(nil), idx[start:end]...)
		// zero weights first (RFC 2782)
		sort.SliceStable(group, func(a, b int) bool { return ts[group[a]].Weight == 0 && ts[group[b]].Weight != 0 })
		for len(group) > 0 {
			sum := 0
			for _, g := range group {
				sum += max(ts[g].Weight, 0)
			}
			pick := 0
			if sum > 0 {
				n := intn(sum + 1)
				run := 0
				for j, g := range group {
					run += max(ts[g].Weight, 0)
					if run >= n {
						pick = j
						break
					}
				}
			}
			out = append(out, group[pick])
			group = append(group[:pick], group[pick+1:]...)
		}
		start = end
	}
	return out
}
