package websocket

import (
	"encoding/binary"
	"slices"
)

// MessageType is the type of a data message.
type MessageType int

// Data message types (RFC 6455 §5.6).
const (
	TextMessage   MessageType = 1 // UTF-8 text, validated on receipt
	BinaryMessage MessageType = 2
)

// opcode is the 4-bit frame type (RFC 6455 §5.2).
type opcode byte

const (
	opContinuation opcode = 0x0
	opText         opcode = 0x1
	opBinary       opcode = 0x2
	opClose        opcode = 0x8
	opPing         opcode = 0x9
	opPong         opcode = 0xA
)

// Frame layout (RFC 6455 §5.2):
//
//	byte 0: FIN(0x80) RSV1(0x40) RSV2(0x20) RSV3(0x10) opcode(0x0F)
//	byte 1: MASK(0x80) payload length(0x7F): 0-125, 126 = 16-bit length follows, 127 = 64-bit
//	then the extended length (big endian), the 4-byte masking key if MASK, the payload.
const (
	finBit  = 0x80
	rsv1Bit = 0x40
	rsv2Bit = 0x20
	rsv3Bit = 0x10
	opMask  = 0x0F
	maskBit = 0x80

	// maxHeaderSize is the longest frame header: 2 + 8 (length) + 4 (key).
	maxHeaderSize = 14
	// maxControlPayload is the largest control frame payload (RFC 6455 §5.5).
	maxControlPayload = 125
)

// isControl reports whether op is a control opcode (close, ping, pong and
// the reserved 0xB-0xF).
func (op opcode) isControl() bool { return op&0x8 != 0 }

// headerSize returns the length of a frame header for a payload of n bytes.
func headerSize(n int, mask bool) int {
	h := 2
	switch {
	case n > 0xFFFF:
		h += 8
	case n > maxControlPayload:
		h += 2
	}
	if mask {
		h += 4
	}
	return h
}

// appendFrame appends one complete frame with the shortest length encoding.
// With mask (clients must mask, RFC 6455 §5.3) the payload is masked with
// key as it is copied; payload itself is not modified. rsv1 marks the first
// frame of a compressed message (RFC 7692 §6).
func appendFrame(dst []byte, op opcode, fin, rsv1 bool, payload []byte, mask bool, key [4]byte) []byte {
	b0 := byte(op)
	if fin {
		b0 |= finBit
	}
	if rsv1 {
		b0 |= rsv1Bit
	}
	var b1 byte
	if mask {
		b1 = maskBit
	}
	n := len(payload)
	dst = slices.Grow(dst, headerSize(n, mask)+n)
	switch {
	case n <= maxControlPayload:
		dst = append(dst, b0, b1|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, b0, b1|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if !mask {
		return append(dst, payload...)
	}
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	maskBytes(key, 0, dst[start:])
	return dst
}

// maskBytes XORs b in place with key, starting at key byte pos (the offset
// of b[0] in the payload modulo 4), and returns the position for the bytes
// that follow b. Masking is symmetric: the same call unmasks. It works a
// 64-bit word at a time because every received client byte goes through it.
func maskBytes(key [4]byte, pos int, b []byte) int {
	pos &= 3
	i := 0
	if len(b) >= 16 {
		var k [8]byte
		for j := range k {
			k[j] = key[(pos+j)&3]
		}
		kw := binary.LittleEndian.Uint64(k[:])
		for ; len(b)-i >= 32; i += 32 {
			s := b[i : i+32 : i+32]
			binary.LittleEndian.PutUint64(s[0:], binary.LittleEndian.Uint64(s[0:])^kw)
			binary.LittleEndian.PutUint64(s[8:], binary.LittleEndian.Uint64(s[8:])^kw)
			binary.LittleEndian.PutUint64(s[16:], binary.LittleEndian.Uint64(s[16:])^kw)
			binary.LittleEndian.PutUint64(s[24:], binary.LittleEndian.Uint64(s[24:])^kw)
		}
		for ; len(b)-i >= 8; i += 8 {
			s := b[i : i+8 : i+8]
			binary.LittleEndian.PutUint64(s, binary.LittleEndian.Uint64(s)^kw)
		}
	}
	for ; i < len(b); i++ {
		b[i] ^= key[(pos+i)&3]
	}
	return (pos + len(b)) & 3
}
