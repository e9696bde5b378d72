package wire

// The simple form is what a client speaks when it negotiates no
// subprotocol: every binary message is a uint32 big-endian action followed
// by the payload, in both directions. It has no request ids, no sequence
// numbers and no hello; replies carry the request's action, and an error
// reply sets SimpleErrorBit in it.

// AppendSimple appends a simple-form message (request, reply or push):
// action, then payload.
func AppendSimple(dst []byte, a Action, payload []byte) []byte {
	return append(be.AppendUint32(dst, uint32(a)), payload...)
}

// AppendSimpleError appends the error reply to action a: a|SimpleErrorBit,
// then msg as UTF-8. Use a = 0 to answer a message too short to carry an
// action.
func AppendSimpleError(dst []byte, a Action, msg string) []byte {
	return append(be.AppendUint32(dst, uint32(a|SimpleErrorBit)), msg...)
}

// DecodeSimple splits a simple-form message into its action and payload,
// which aliases b. A message shorter than 4 bytes returns ErrShortMessage,
// whose text is what the server sends back in the error reply; the
// connection stays up. The returned action keeps SimpleErrorBit, so a
// client tests a&SimpleErrorBit to recognise an error reply.
func DecodeSimple(b []byte) (Action, []byte, error) {
	if len(b) < 4 {
		return 0, nil, ErrShortMessage
	}
	return Action(be.Uint32(b)), b[4:], nil
}
