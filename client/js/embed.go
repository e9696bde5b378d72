// Package wsgatejs holds the JavaScript client package @wsgate/client
// (wire.js, the protocol codec, and wsgate.js, the client), as published to
// npm and as the gateway serves it to its test page: this package embeds
// the very files of the npm package, so there is one copy of them.
package wsgatejs

import "embed"

// Files holds wire.js and wsgate.js at the root of the file system. Their
// type declarations (*.d.ts) serve only the npm package.
//
//go:embed wire.js wsgate.js
var Files embed.FS
