package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// The JSON form carries the same frames as text messages, for people and
// debugging tools. AppendJSON writes one canonical spelling; DecodeJSON
// accepts any key order and whitespace but is strict about everything
// else (exact key names, fields allowed for the type, integer ranges), so
// that a typo fails loudly instead of being ignored.
//
// A payload is written as exactly one of:
//
//	"json": value    when the payload is compact JSON text (no whitespace
//	                 outside strings), embedded verbatim;
//	"text": "…"      when it is UTF-8 without control characters other than
//	                 tab, CR and LF;
//	"data": "…"      otherwise, standard base64 with padding.
//
// An empty payload is omitted. String fields are escaped the way
// JavaScript's JSON.stringify escapes them, so the Go and JS encoders agree
// byte for byte; invalid UTF-8 in a message or id becomes U+FFFD.

// AppendJSON appends the canonical JSON form of f to dst. It fails only for
// an unknown type, and then returns dst unchanged.
func AppendJSON(dst []byte, f *Frame) ([]byte, error) {
	name := f.Type.String()
	if name == "unknown" {
		return dst, ErrUnknownType
	}
	dst = append(append(append(dst, `{"type":"`...), name...), '"')
	switch f.Type {
	case TypeRequest:
		dst = appendUintField(dst, "id", uint64(f.ID))
		dst = appendUintField(dst, "action", uint64(f.Action))
		dst = appendPayload(dst, f.Payload)
	case TypeReply:
		dst = appendUintField(dst, "id", uint64(f.ID))
		dst = appendPayload(dst, f.Payload)
	case TypeRefresh:
		dst = appendUintField(dst, "id", uint64(f.ID))
		dst = appendJSONString(append(dst, `,"token":`...), f.Payload)
	case TypeError:
		dst = appendUintField(dst, "id", uint64(f.ID))
		dst = appendUintField(dst, "code", uint64(f.Code))
		dst = appendJSONString(append(dst, `,"message":`...), f.Payload)
	case TypePush:
		dst = appendUintField(dst, "action", uint64(f.Action))
		dst = appendUintField(dst, "seq", f.Seq)
		dst = appendPayload(dst, f.Payload)
	case TypeAck:
		dst = appendUintField(dst, "seq", f.Seq)
	case TypeHello:
		dst = appendJSONString(append(dst, `,"conn":`...), f.ConnID)
		dst = appendJSONString(append(dst, `,"user":`...), f.UserID)
		dst = appendUintField(dst, "seq", f.Seq)
		dst = appendUintField(dst, "epoch", f.Epoch)
		dst = appendUintField(dst, "maxMessage", uint64(f.MaxMessage))
		dst = appendUintField(dst, "heartbeat", uint64(f.Heartbeat))
	}
	return append(dst, '}'), nil
}

func appendUintField(dst []byte, name string, v uint64) []byte {
	dst = append(append(append(dst, `,"`...), name...), `":`...)
	return strconv.AppendUint(dst, v, 10)
}

func appendPayload(dst, p []byte) []byte {
	switch {
	case len(p) == 0:
		return dst
	case isCompactJSON(p):
		return append(append(dst, `,"json":`...), p...)
	case isText(p):
		return appendJSONString(append(dst, `,"text":`...), p)
	}
	dst = base64.StdEncoding.AppendEncode(append(dst, `,"data":"`...), p)
	return append(dst, '"')
}

// isCompactJSON reports whether p is valid JSON with no whitespace outside
// strings, so that a decoder returning the value's text gets p back.
func isCompactJSON(p []byte) bool {
	if !utf8.Valid(p) || !json.Valid(p) {
		return false
	}
	inString, escaped := false, false
	for _, c := range p {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		}
	}
	return true
}

// isText reports whether p reads well as a JSON string: valid UTF-8 and no
// control characters other than tab, LF and CR.
func isText(p []byte) bool {
	for _, c := range p {
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f {
			return false
		}
	}
	return utf8.Valid(p)
}

// appendJSONString quotes s like JSON.stringify: short escapes for \b \f
// \n \r \t, \u00XX for other control characters, everything else literal.
func appendJSONString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRune(s[i:])
			dst = utf8.AppendRune(dst, r) // RuneError for invalid bytes
			i += n
			continue
		}
		i++
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c >= 0x20:
			dst = append(dst, c)
		case c == '\b':
			dst = append(dst, '\\', 'b')
		case c == '\f':
			dst = append(dst, '\\', 'f')
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
	}
	return append(dst, '"')
}

// DecodeJSON decodes one JSON-form frame into f, overwriting all of f.
// Unlike DecodeFrame it allocates, and f never aliases b. Missing numeric
// fields are zero. Errors wrap ErrBadJSON or ErrUnknownType.
func DecodeJSON(b []byte, f *Frame) error {
	*f = Frame{}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	t, err := jsonType(fields)
	if err != nil {
		return err
	}
	for name := range fields {
		if !jsonFieldAllowed(t, name) {
			return fmt.Errorf("%w: field %q not allowed in %s frame", ErrBadJSON, name, t)
		}
	}
	var d jsonDecoder
	d.fields = fields
	d.frame(t, f)
	if d.err != nil {
		*f = Frame{}
		return d.err
	}
	f.Type = t
	return nil
}

func jsonType(fields map[string]json.RawMessage) (FrameType, error) {
	raw, ok := fields["type"]
	if !ok {
		return 0, fmt.Errorf("%w: missing \"type\"", ErrBadJSON)
	}
	var name string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &name) != nil {
		return 0, fmt.Errorf("%w: \"type\" is not a string", ErrBadJSON)
	}
	for t := TypeRequest; t <= TypeRefresh; t++ {
		if t.String() == name {
			return t, nil
		}
	}
	return 0, fmt.Errorf("%w %q", ErrUnknownType, name)
}

func jsonFieldAllowed(t FrameType, name string) bool {
	switch name {
	case "type":
		return true
	case "id":
		return t == TypeRequest || t == TypeReply || t == TypeError || t == TypeRefresh
	case "token":
		return t == TypeRefresh
	case "action":
		return t == TypeRequest || t == TypePush
	case "seq":
		return t == TypePush || t == TypeAck || t == TypeHello
	case "code", "message":
		return t == TypeError
	case "conn", "user", "epoch", "maxMessage", "heartbeat":
		return t == TypeHello
	case "data", "json", "text":
		return t == TypeRequest || t == TypeReply || t == TypePush
	}
	return false
}

// jsonDecoder keeps the first error so frame can read fields in a row.
type jsonDecoder struct {
	fields map[string]json.RawMessage
	err    error
}

func (d *jsonDecoder) frame(t FrameType, f *Frame) {
	f.ID = uint32(d.uint("id", 32))
	f.Action = Action(d.uint("action", 32))
	f.Seq = d.uint("seq", 64)
	f.Epoch = d.uint("epoch", 64)
	f.Code = ErrorCode(d.uint("code", 16))
	f.MaxMessage = uint32(d.uint("maxMessage", 32))
	f.Heartbeat = uint16(d.uint("heartbeat", 16))
	if t == TypeError {
		f.Payload = d.bytes("message")
	}
	if t == TypeRefresh {
		f.Payload = d.bytes("token")
	}
	if t == TypeHello {
		f.ConnID = d.bytes("conn")
		f.UserID = d.bytes("user")
	}
	if d.err == nil {
		f.Payload = d.payload(f.Payload)
	}
}

// uint reads an unsigned integer written in plain decimal.
func (d *jsonDecoder) uint(name string, bits int) uint64 {
	raw, ok := d.fields[name]
	if !ok || d.err != nil {
		return 0
	}
	v, err := strconv.ParseUint(string(raw), 10, bits)
	if err != nil {
		d.err = fmt.Errorf("%w: %q is not a uint%d", ErrBadJSON, name, bits)
	}
	return v
}

// bytes reads a string field as UTF-8 bytes; absent means empty.
func (d *jsonDecoder) bytes(name string) []byte {
	raw, ok := d.fields[name]
	if !ok || d.err != nil {
		return nil
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		d.err = fmt.Errorf("%w: %q is not a string", ErrBadJSON, name)
		return nil
	}
	return []byte(s)
}

// payload reads whichever of data, json and text is present.
func (d *jsonDecoder) payload(p []byte) []byte {
	_, hasData := d.fields["data"]
	raw, hasJSON := d.fields["json"]
	_, hasText := d.fields["text"]
	switch {
	case btoi(hasData)+btoi(hasJSON)+btoi(hasText) > 1:
		d.err = fmt.Errorf("%w: more than one of \"data\", \"json\", \"text\"", ErrBadJSON)
	case hasJSON:
		return bytes.Clone(raw)
	case hasText:
		return d.bytes("text")
	case hasData:
		return d.base64()
	}
	return p
}

// base64 accepts only the canonical encoding, so that every payload has
// exactly one spelling and the JS decoder agrees.
func (d *jsonDecoder) base64() []byte {
	s := d.bytes("data")
	if d.err != nil {
		return nil
	}
	p, err := base64.StdEncoding.AppendDecode(nil, s)
	if err != nil || !bytes.Equal(base64.StdEncoding.AppendEncode(nil, p), s) {
		d.err = fmt.Errorf("%w: \"data\" is not canonical base64", ErrBadJSON)
		return nil
	}
	return p
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// MarshalJSON returns the canonical JSON form (see AppendJSON), so frames
// print readably through encoding/json and log/slog.
func (f Frame) MarshalJSON() ([]byte, error) {
	return AppendJSON(nil, &f)
}

// UnmarshalJSON decodes the JSON form (see DecodeJSON).
func (f *Frame) UnmarshalJSON(b []byte) error {
	return DecodeJSON(b, f)
}
