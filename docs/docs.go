// Package docs embeds the administrator documentation the unit itself
// shows: the web admin's help next to each configuration field comes from
// the configuration reference, so the two cannot say different things.
package docs

import _ "embed"

// Configuration is docs/configuration.md, the configuration reference.
//
//go:embed configuration.md
var Configuration string
