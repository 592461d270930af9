package main

import "testing"

// TestStreamCounts: the receiver's counts tell loss, duplicates and
// reordering apart, also past RTP's 16-bit sequence wrap.
func TestStreamCounts(t *testing.T) {
	tests := []struct {
		name                      string
		deliver                   []uint32
		received, dups, reordered uint64
	}{
		{"in order", []uint32{0, 1, 2, 3}, 4, 0, 0},
		{"lost one", []uint32{0, 1, 3}, 3, 0, 0},
		{"duplicate", []uint32{0, 1, 1, 2}, 3, 1, 0},
		{"reordered", []uint32{0, 2, 1, 3}, 4, 0, 1},
		{"past the wrap", []uint32{65535, 65536 + 65535, 65535}, 2, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &stream{ssrc: 7}
			other := &stream{ssrc: 8}
			for _, seq := range tt.deliver {
				s.got(s.packet(seq))
				s.got(other.packet(seq)) // another call's packet is not counted
			}
			if s.received != tt.received || s.dups != tt.dups || s.reordered != tt.reordered {
				t.Fatalf("received %d, duplicates %d, reordered %d; want %d, %d, %d",
					s.received, s.dups, s.reordered, tt.received, tt.dups, tt.reordered)
			}
		})
	}
}
