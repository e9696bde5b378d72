package websocket

import "errors"

// PreparedMessage is a message framed once and sent to many connections.
type PreparedMessage struct {
	typ  MessageType
	data []byte
}

// NewPreparedMessage copies data into a prepared message.
func NewPreparedMessage(typ MessageType, data []byte) (*PreparedMessage, error) {
	if typ != TextMessage && typ != BinaryMessage {
		return nil, errors.New("websocket: invalid message type")
	}
	return &PreparedMessage{typ: typ, data: append([]byte(nil), data...)}, nil
}

func (pm *PreparedMessage) frame(compressed bool) ([]byte, error) {
	return appendFrame(nil, opcode(pm.typ), true, false, pm.data, false, [4]byte{}), nil
}
