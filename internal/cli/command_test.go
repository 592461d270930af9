package cli

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestGlobalFlagsAnywhere(t *testing.T) {
	for _, tc := range []struct {
		args []string
		rest []string
		want Context
	}{
		{[]string{"--data", "d", "config", "show"}, []string{"config", "show"}, Context{Data: "d"}},
		{[]string{"config", "show", "--running", "--json", "--data=x"}, []string{"config", "show", "--running"}, Context{Data: "x", JSON: true}},
		{[]string{"config", "--server", "https://h:1", "--token", "t", "--insecure", "history"}, []string{"config", "history"},
			Context{Server: "https://h:1", Token: "t", Insecure: true}},
		{[]string{"config", "set", "unit.name", "--", "--data"}, []string{"config", "set", "unit.name", "--", "--data"}, Context{}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var c Context
			rest, err := c.extractGlobals(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rest, tc.rest) || c.Data != tc.want.Data || c.Server != tc.want.Server ||
				c.Token != tc.want.Token || c.JSON != tc.want.JSON || c.Insecure != tc.want.Insecure {
				t.Fatalf("got %q %+v", rest, c)
			}
		})
	}
	var c Context
	if _, err := c.extractGlobals([]string{"config", "--data"}); err == nil {
		t.Fatal("--data without a value accepted")
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"no-such-command"}, 2, "unknown command"},
		{[]string{"config"}, 2, "needs a subcommand"},
		{[]string{"config", "frobnicate"}, 2, "unknown subcommand"},
		{[]string{"help", "config"}, 0, "usage: palisade config"},
		{[]string{"--data", "/nonexistent/palisade", "config", "show"}, 1, "no data directory"},
		{[]string{"--server", "http://plain", "--token", "x", "config", "show"}, 1, "https://"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, strings.NewReader(""), &out, &errb)
			all := out.String() + errb.String()
			if code != tc.code || !strings.Contains(all, tc.out) {
				t.Fatalf("exit %d, output %q; want %d and %q", code, all, tc.code, tc.out)
			}
			if code == 1 && strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
				t.Fatalf("failure reason is not one line: %q", errb.String())
			}
		})
	}
}
