package robust_test

import "testing"

// TestCallThroughUnit is the baseline the other tests build on: a call
// from the PBX peer to the trunk peer is set up and torn down.
func TestCallThroughUnit(t *testing.T) {
	u := startUnit(t, nil)
	c := startCall(t, u)
	if c.uas.Invites.Load() != 1 {
		t.Fatalf("trunk got %d INVITEs", c.uas.Invites.Load())
	}
	if st, got := c.hangUp(t); st != 200 || !got {
		t.Fatalf("BYE: status %d, trunk got it: %v", st, got)
	}
}
