package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Subprotocols a client offers in Sec-WebSocket-Protocol to use the full
// form. With Subprotocol the server sends hello and pushes as binary frames;
// with SubprotocolJSON it sends them as JSON text, for people debugging with
// a terminal client. A client that offers neither speaks the simple form.
const (
	Subprotocol     = "wsgate.v1"
	SubprotocolJSON = "wsgate.v1.json"
)

// FrameType is the first byte of every full-form binary message.
type FrameType uint8

const (
	TypeRequest FrameType = 1 // client→server: action, request id, payload
	TypeReply   FrameType = 2 // server→client: request id, payload
	TypeError   FrameType = 3 // server→client: request id, error code, UTF-8 message
	TypePush    FrameType = 4 // server→client: action, sequence, payload
	TypeAck     FrameType = 5 // client→server: sequence
	TypeHello   FrameType = 6 // server→client, first frame: ids, last sequence and epoch, limits
	// Type 7 was resume, a client's first frame; a client now passes its
	// position in the handshake (ResumeParam). The code stays reserved.
	TypeRefresh FrameType = 8 // client→server: request id, a new token (UTF-8) for this connection
)

// typeResumeGone is the code resume frames had.
const typeResumeGone FrameType = 7

// ErrResumeFrame is what DecodeFrame returns for a resume frame (type 7),
// which the protocol no longer has; it is an ErrUnknownType.
var ErrResumeFrame = fmt.Errorf("%w 7: resume frames are gone; a client passes its position in the handshake as ?"+ResumeParam+"=<epoch>.<seq>", ErrUnknownType)

// ResumeParam is the query parameter of the upgrade request in which a
// client that holds a position in its user's sequence passes it, as
// "<epoch>.<seq>" (see FormatResume).
const ResumeParam = "resume"

// Fixed sizes of each frame type, type byte included. Hello is helloMin
// plus its two ids.
const (
	requestHeader = 9
	replyHeader   = 5
	errorHeader   = 7
	pushHeader    = 13
	seqFrameLen   = 9 // ack
	helloMin      = 27
	maxIDLen      = 1<<16 - 1
)

// String returns the type's name as used in the JSON form ("request", …).
func (t FrameType) String() string {
	switch t {
	case TypeRequest:
		return "request"
	case TypeReply:
		return "reply"
	case TypeError:
		return "error"
	case TypePush:
		return "push"
	case TypeAck:
		return "ack"
	case TypeHello:
		return "hello"
	case TypeRefresh:
		return "refresh"
	}
	return "unknown"
}

// Decoding and encoding errors. DecodeFrame and DecodeSimple return them
// unwrapped, so that rejecting a hostile message costs no allocation;
// DecodeJSON wraps them with detail. Match them with errors.Is.
var (
	ErrShortMessage  = errors.New("wsgate: message shorter than 4 bytes")
	ErrShortFrame    = errors.New("wsgate: frame truncated")
	ErrUnknownType   = errors.New("wsgate: unknown frame type")
	ErrTrailingBytes = errors.New("wsgate: trailing bytes after frame")
	ErrFieldTooLong  = errors.New("wsgate: field too long")
	ErrBadJSON       = errors.New("wsgate: malformed json frame")
)

// Frame is one full-form message. Which fields are used depends on Type;
// the others are zero after decoding and ignored when encoding.
//
// After DecodeFrame, Payload, ConnID and UserID alias the decoded message:
// copy them before reusing its buffer.
type Frame struct {
	Type       FrameType
	Action     Action    // request, push
	ID         uint32    // request (0 = no reply wanted), reply, error (0 = not tied to a request), refresh
	Seq        uint64    // push (0 = unsequenced), ack, hello (the user's last)
	Epoch      uint64    // hello: the epoch of the user's sequence; 0 = not sequenced
	Code       ErrorCode // error
	Payload    []byte    // request, reply, push; error: the UTF-8 message; refresh: the token
	ConnID     []byte    // hello: at most 65535 bytes
	UserID     []byte    // hello: at most 65535 bytes
	MaxMessage uint32    // hello: largest message the client may send, in bytes; 0 = unstated
	Heartbeat  uint16    // hello: seconds between server pings; 0 = none
}

var be = binary.BigEndian

// AppendFrame appends the binary encoding of f to dst. It fails only for an
// unknown type or a hello id longer than 65535 bytes, and then returns dst
// unchanged. Appending to a buffer with enough capacity does not allocate.
func AppendFrame(dst []byte, f *Frame) ([]byte, error) {
	switch f.Type {
	case TypeRequest:
		dst = append(dst, byte(TypeRequest))
		dst = be.AppendUint32(dst, uint32(f.Action))
		dst = be.AppendUint32(dst, f.ID)
	case TypeReply, TypeRefresh:
		dst = append(dst, byte(f.Type))
		dst = be.AppendUint32(dst, f.ID)
	case TypeError:
		dst = append(dst, byte(TypeError))
		dst = be.AppendUint32(dst, f.ID)
		dst = be.AppendUint16(dst, uint16(f.Code))
	case TypePush:
		dst = append(dst, byte(TypePush))
		dst = be.AppendUint32(dst, uint32(f.Action))
		dst = be.AppendUint64(dst, f.Seq)
	case TypeAck:
		return be.AppendUint64(append(dst, byte(f.Type)), f.Seq), nil
	case TypeHello:
		return appendHello(dst, f)
	default:
		return dst, ErrUnknownType
	}
	return append(dst, f.Payload...), nil
}

// appendHello lays out: type, seq u64, epoch u64, maxMessage u32,
// heartbeat u16, conn length u16, conn, user length u16, user.
func appendHello(dst []byte, f *Frame) ([]byte, error) {
	if len(f.ConnID) > maxIDLen || len(f.UserID) > maxIDLen {
		return dst, ErrFieldTooLong
	}
	dst = append(dst, byte(TypeHello))
	dst = be.AppendUint64(dst, f.Seq)
	dst = be.AppendUint64(dst, f.Epoch)
	dst = be.AppendUint32(dst, f.MaxMessage)
	dst = be.AppendUint16(dst, f.Heartbeat)
	dst = be.AppendUint16(dst, uint16(len(f.ConnID)))
	dst = append(dst, f.ConnID...)
	dst = be.AppendUint16(dst, uint16(len(f.UserID)))
	return append(dst, f.UserID...), nil
}

// DecodeFrame decodes one binary full-form message into f, overwriting all
// of f. It checks every length, rejects trailing bytes after fixed-size
// frames, never panics and never allocates. Size limits are the caller's
// job (the WebSocket read limit). On error f is zero.
func DecodeFrame(b []byte, f *Frame) error {
	*f = Frame{}
	if len(b) == 0 {
		return ErrShortFrame
	}
	var err error
	switch t := FrameType(b[0]); t {
	case TypeRequest:
		err = decodeRequest(b, f)
	case TypeReply, TypeRefresh:
		err = decodeReply(b, f)
	case TypeError:
		err = decodeError(b, f)
	case TypePush:
		err = decodePush(b, f)
	case TypeAck:
		err = decodeSeqFrame(b, f)
	case TypeHello:
		err = decodeHello(b, f)
	case typeResumeGone:
		return ErrResumeFrame
	default:
		return ErrUnknownType
	}
	if err != nil {
		*f = Frame{}
		return err
	}
	f.Type = FrameType(b[0])
	return nil
}

func decodeRequest(b []byte, f *Frame) error {
	if len(b) < requestHeader {
		return ErrShortFrame
	}
	f.Action = Action(be.Uint32(b[1:]))
	f.ID = be.Uint32(b[5:])
	f.Payload = b[requestHeader:]
	return nil
}

func decodeReply(b []byte, f *Frame) error {
	if len(b) < replyHeader {
		return ErrShortFrame
	}
	f.ID = be.Uint32(b[1:])
	f.Payload = b[replyHeader:]
	return nil
}

func decodeError(b []byte, f *Frame) error {
	if len(b) < errorHeader {
		return ErrShortFrame
	}
	f.ID = be.Uint32(b[1:])
	f.Code = ErrorCode(be.Uint16(b[5:]))
	f.Payload = b[errorHeader:]
	return nil
}

func decodePush(b []byte, f *Frame) error {
	if len(b) < pushHeader {
		return ErrShortFrame
	}
	f.Action = Action(be.Uint32(b[1:]))
	f.Seq = be.Uint64(b[5:])
	f.Payload = b[pushHeader:]
	return nil
}

func decodeSeqFrame(b []byte, f *Frame) error {
	if len(b) < seqFrameLen {
		return ErrShortFrame
	}
	if len(b) > seqFrameLen {
		return ErrTrailingBytes
	}
	f.Seq = be.Uint64(b[1:])
	return nil
}

func decodeHello(b []byte, f *Frame) error {
	if len(b) < helloMin {
		return ErrShortFrame
	}
	f.Seq = be.Uint64(b[1:])
	f.Epoch = be.Uint64(b[9:])
	f.MaxMessage = be.Uint32(b[17:])
	f.Heartbeat = be.Uint16(b[21:])
	rest := b[23:]
	var ok bool
	if f.ConnID, rest, ok = cutID(rest); !ok {
		return ErrShortFrame
	}
	if f.UserID, rest, ok = cutID(rest); !ok {
		return ErrShortFrame
	}
	if len(rest) != 0 {
		return ErrTrailingBytes
	}
	return nil
}

// cutID splits a uint16-length-prefixed field off the front of b.
func cutID(b []byte) (id, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, b, false
	}
	n := int(be.Uint16(b))
	if len(b)-2 < n {
		return nil, b, false
	}
	return b[2 : 2+n], b[2+n:], true
}

// FormatResume appends the ResumeParam value for a client at seq of epoch.
func FormatResume(dst []byte, epoch, seq uint64) []byte {
	dst = strconv.AppendUint(dst, epoch, 10)
	return strconv.AppendUint(append(dst, '.'), seq, 10)
}

// ErrBadResume is what ParseResume returns for a malformed value.
var ErrBadResume = errors.New("wsgate: resume must be <epoch>.<seq>, two decimal numbers")

// ParseResume reads a ResumeParam value.
func ParseResume(s string) (epoch, seq uint64, err error) {
	e, q, ok := strings.Cut(s, ".")
	if !ok {
		return 0, 0, ErrBadResume
	}
	if epoch, err = strconv.ParseUint(e, 10, 64); err != nil {
		return 0, 0, ErrBadResume
	}
	if seq, err = strconv.ParseUint(q, 10, 64); err != nil {
		return 0, 0, ErrBadResume
	}
	return epoch, seq, nil
}
