package websocket

import (
	"errors"
	"sync"
)

// PreparedMessage is a message framed once and sent to many connections
// (broadcast): the frame header, and for compressed connections the DEFLATE
// output, are computed once instead of once per recipient. It is immutable
// and safe for concurrent use.
//
// A server connection without compression sends the plain frame as is; one
// that negotiated permessage-deflate without server context takeover sends
// the compressed frame, built on first use. A connection that must mask
// (client), keeps compression context, or was allowed a smaller LZ77 window
// than 32 KiB frames typ and data itself.
type PreparedMessage struct {
	typ   MessageType
	data  []byte // the payload; aliases the tail of plain
	plain []byte // complete unmasked, uncompressed frame

	once    sync.Once
	comp    []byte // complete unmasked frame of the compressed message
	compErr error
}

// NewPreparedMessage copies data into a prepared message. Text must be
// valid UTF-8: a peer fails the connection on anything else.
func NewPreparedMessage(typ MessageType, data []byte) (*PreparedMessage, error) {
	if typ != TextMessage && typ != BinaryMessage {
		return nil, errors.New("websocket: invalid message type")
	}
	if typ == TextMessage && !validUTF8(data) {
		return nil, errors.New("websocket: text message is not valid UTF-8")
	}
	// The plain frame is built now rather than lazily: data must be copied
	// anyway, and copying it straight into the frame costs one buffer
	// instead of two.
	plain := appendFrame(make([]byte, 0, headerSize(len(data), false)+len(data)),
		opcode(typ), true, false, data, false, [4]byte{})
	return &PreparedMessage{typ: typ, data: plain[len(plain)-len(data):], plain: plain}, nil
}

// frame returns the server-side (unmasked) frame bytes to send: the plain
// frame, or with compressed the frame of the message compressed without
// context takeover, built once. Callers must not modify the result.
func (pm *PreparedMessage) frame(compressed bool) ([]byte, error) {
	if !compressed {
		return pm.plain, nil
	}
	pm.once.Do(func() {
		var d deflater
		payload, err := d.compress(nil, pm.data)
		if err != nil {
			pm.compErr = err
			return
		}
		pm.comp = appendFrame(make([]byte, 0, headerSize(len(payload), false)+len(payload)),
			opcode(pm.typ), true, true, payload, false, [4]byte{})
	})
	return pm.comp, pm.compErr
}
