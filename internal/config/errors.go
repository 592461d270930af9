package config

import "strings"

// FieldError is one problem in a configuration document, with the path of
// the field it concerns, e.g. "sip.listeners[2].port".
type FieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (e FieldError) Error() string { return e.Path + ": " + e.Message }

// Errors is every problem found in a document. Validate returns all of them,
// never just the first.
type Errors []FieldError

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}
