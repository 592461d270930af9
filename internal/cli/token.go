package cli

import (
	"fmt"
	"io"
	"net/url"
	"time"
)

func init() {
	Register(&Command{
		Name:    "token",
		Summary: "make, list and revoke API tokens for --server",
		Usage:   "token new NAME | list | delete ID",
		Run: func(c *Context, args []string) error {
			return c.Dispatch(args, map[string]func(*Context, []string) error{
				"new": tokenNew, "list": tokenList, "delete": tokenDelete,
			})
		},
	})
}

type tokenInfo struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Author  string    `json:"author"`
	Token   string    `json:"token,omitempty"`
}

// tokenNew prints the new token alone on stdout (shown only this once), so
// that scripts can capture it: PALISADE_TOKEN=$(palisade token new ci).
func tokenNew(c *Context, args []string) error {
	if len(args) != 1 {
		return c.Usagef("token new needs a NAME")
	}
	var t tokenInfo
	if err := c.Call("POST", "/api/v1/tokens", map[string]string{"name": args[0]}, &t); err != nil {
		return err
	}
	return c.Output(t, func(w io.Writer) { fmt.Fprintln(w, t.Token) })
}

func tokenList(c *Context, args []string) error {
	var ts []tokenInfo
	if err := c.Call("GET", "/api/v1/tokens", nil, &ts); err != nil {
		return err
	}
	return c.Output(ts, func(w io.Writer) {
		tw := newTable(w)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tBY")
		for _, t := range ts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Created.Local().Format(time.DateTime), t.Author)
		}
		tw.Flush()
	})
}

func tokenDelete(c *Context, args []string) error {
	if len(args) != 1 {
		return c.Usagef("token delete needs an ID (see token list)")
	}
	if err := c.Call("DELETE", "/api/v1/tokens/"+url.PathEscape(args[0]), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "token %s revoked\n", args[0])
	return nil
}
