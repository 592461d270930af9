package config

import "testing"

// The default tree is parsed once and handed out as copies: a caller
// changing its copy (mergeDefaults moves default members into documents)
// must not change what the next Decode fills in.
func TestDefaultTreeIsACopy(t *testing.T) {
	tr := defaultTree().(*object)
	unit := tr.vals["unit"].(*object)
	unit.set("name", "changed")
	unit.set("extra", "x")
	tr.vals["peers"] = append(tr.vals["peers"].([]any), "x")
	tr.set("added", true)

	c, err := Decode([]byte(`{"peers":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if !Equal(c, Default()) {
		t.Fatal("a change to one default tree reached a later Decode")
	}
	again := defaultTree().(*object)
	if _, ok := again.vals["added"]; ok || again.vals["unit"].(*object).vals["name"] != Default().Unit.Name {
		t.Fatal("defaultTree returned the changed tree")
	}
}
