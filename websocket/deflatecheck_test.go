package websocket

import (
	"errors"
	"fmt"
)

// DEFLATE (RFC 1951) decoding for tests that must see what a compressor
// emitted, which compress/flate's reader does not show: the farthest
// back-reference. zlib is no help either: it only checks distances against
// its window for references that reach before the current output buffer.
// Written after zlib's puff.c: slow, simple, complete.

// InflateWindowed decodes a raw DEFLATE stream (blocks up to the end of
// data, the final-block bit not required, as permessage-deflate sends
// them) that may refer back into dict (context takeover), and returns its
// output and the longest back-reference distance.
func InflateWindowed(dict, data []byte) (out []byte, maxDist int, err error) {
	d := &puff{in: data, out: append([]byte(nil), dict...)}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("deflate: %v", r)
		}
	}()
	for {
		if d.pos >= len(d.in) && d.bitCnt < 8 && d.bitBuf == 0 {
			return d.out[len(dict):], d.maxDist, nil
		}
		last := d.bits(1)
		switch d.bits(2) {
		case 0:
			d.stored()
		case 1:
			d.codes(fixedTables())
		case 2:
			lc, dc := d.dynamic()
			d.codes(lc, dc)
		default:
			return nil, 0, errors.New("deflate: invalid block type")
		}
		if last == 1 {
			return d.out[len(dict):], d.maxDist, nil
		}
	}
}

type puff struct {
	in      []byte
	pos     int
	bitBuf  uint32
	bitCnt  uint
	out     []byte
	maxDist int
}

func (d *puff) bits(n uint) int {
	for d.bitCnt < n {
		if d.pos >= len(d.in) {
			panic("input ends inside a block")
		}
		d.bitBuf |= uint32(d.in[d.pos]) << d.bitCnt
		d.pos++
		d.bitCnt += 8
	}
	v := d.bitBuf & (1<<n - 1)
	d.bitBuf >>= n
	d.bitCnt -= n
	return int(v)
}

func (d *puff) stored() {
	d.bitBuf, d.bitCnt = 0, 0
	if d.pos+4 > len(d.in) {
		panic("stored block header cut")
	}
	n := int(d.in[d.pos]) | int(d.in[d.pos+1])<<8
	if nn := int(d.in[d.pos+2]) | int(d.in[d.pos+3])<<8; nn != ^n&0xffff {
		panic("stored block length check")
	}
	d.pos += 4
	if d.pos+n > len(d.in) {
		panic("stored block cut")
	}
	d.out = append(d.out, d.in[d.pos:d.pos+n]...)
	d.pos += n
}

// huffman is a canonical code: count of codes per length, symbols in code order.
type huffman struct {
	count  [16]int
	symbol []int
}

func newHuffman(lengths []int) *huffman {
	h := &huffman{symbol: make([]int, 0, len(lengths))}
	for _, l := range lengths {
		h.count[l]++
	}
	for l := 1; l < 16; l++ {
		for s, sl := range lengths {
			if sl == l {
				h.symbol = append(h.symbol, s)
			}
		}
	}
	return h
}

func (d *puff) decode(h *huffman) int {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		code |= d.bits(1)
		count := h.count[l]
		if code-count < first {
			return h.symbol[index+(code-first)]
		}
		index += count
		first = (first + count) << 1
		code <<= 1
	}
	panic("invalid Huffman code")
}

var (
	lenBase  = [29]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = [29]uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase = [30]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtr = [30]uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

func (d *puff) codes(lc, dc *huffman) {
	for {
		sym := d.decode(lc)
		switch {
		case sym < 256:
			d.out = append(d.out, byte(sym))
			continue
		case sym == 256:
			return
		case sym > 285:
			panic("invalid length symbol")
		}
		sym -= 257
		n := lenBase[sym] + d.bits(lenExtra[sym])
		ds := d.decode(dc)
		if ds > 29 {
			panic("invalid distance symbol")
		}
		dist := distBase[ds] + d.bits(distExtr[ds])
		if dist > len(d.out) {
			panic("distance before the start of the stream")
		}
		d.maxDist = max(d.maxDist, dist)
		for range n {
			d.out = append(d.out, d.out[len(d.out)-dist])
		}
	}
}

func fixedTables() (*huffman, *huffman) {
	var l [288]int
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	var dl [30]int
	for i := range dl {
		dl[i] = 5
	}
	return newHuffman(l[:]), newHuffman(dl[:])
}

func (d *puff) dynamic() (*huffman, *huffman) {
	nlen, ndist, ncode := d.bits(5)+257, d.bits(5)+1, d.bits(4)+4
	order := [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	var cl [19]int
	for i := range ncode {
		cl[order[i]] = d.bits(3)
	}
	ch := newHuffman(cl[:])
	lengths := make([]int, 0, nlen+ndist)
	for len(lengths) < nlen+ndist {
		sym := d.decode(ch)
		switch {
		case sym < 16:
			lengths = append(lengths, sym)
			continue
		case sym == 16:
			if len(lengths) == 0 {
				panic("repeat with no previous length")
			}
			prev := lengths[len(lengths)-1]
			for range 3 + d.bits(2) {
				lengths = append(lengths, prev)
			}
		case sym == 17:
			for range 3 + d.bits(3) {
				lengths = append(lengths, 0)
			}
		default:
			for range 11 + d.bits(7) {
				lengths = append(lengths, 0)
			}
		}
	}
	if len(lengths) > nlen+ndist {
		panic("too many code lengths")
	}
	return newHuffman(lengths[:nlen]), newHuffman(lengths[nlen:])
}
