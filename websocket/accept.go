package websocket

import (
	"errors"
	"net"
	"net/http"
)

// AcceptOptions tunes one server-side handshake.
type AcceptOptions struct {
	Subprotocols   []string                   // server preference order; first one the client also offered wins
	CheckOrigin    func(r *http.Request) bool // nil: allow no Origin or Origin host == r.Host; false → 403
	ResponseHeader http.Header                // extra headers on the 101
	Value          any                        // stored on the Conn before any callback (Conn.Value)
}

// handshakeResult is what a finished handshake hands to the connection layer.
type handshakeResult struct {
	conn        net.Conn       // hijacked / dialed connection
	buffered    []byte         // bytes already read past the handshake (must be fed to the parser first)
	subprotocol string         // negotiated subprotocol, "" if none
	deflate     *deflateParams // nil if not negotiated
}

// serverHandshake validates r, writes the 101 (or the HTTP error) and hijacks.
func serverHandshake(w http.ResponseWriter, r *http.Request, opts *AcceptOptions, comp compressionConfig) (handshakeResult, error) {
	http.Error(w, "websocket: handshake not implemented", http.StatusNotImplemented)
	return handshakeResult{}, errors.New("websocket: handshake not implemented")
}
