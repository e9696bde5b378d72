package api

import (
	"encoding/json"
	"math"
)

// The push body's fast path. Nearly every push body has one shape: an
// object with "to" (one user, topic or connection, or all), "action" and
// "json" or "data", written by a JSON encoder without escapes in its
// strings. encoding/json decodes it by reflection (about 3 µs of a push's
// 50 on a loaded 2-core machine, and three allocations); parseFast reads
// exactly that shape by hand and fills the same pushRequest that
// encoding/json would, and declines anything else: other targets,
// escapes, non-ASCII strings, numbers that are not plain integers, keys
// in another case, repeated keys, unknown keys, malformed input. Declined
// bodies go through encoding/json as before, so every answer (and every
// error text) stays what encoding/json makes of the body;
// FuzzFastPushMatchesJSON checks that parseFast never accepts a body that
// encoding/json reads differently.

// parseFast fills req from body when body has the usual shape, with its
// pointers into into, and reports whether it did. The "json" value is
// checked by json.Valid and copied, as encoding/json's RawMessage is.
func parseFast(body []byte, req *pushRequest, into *fastFields) bool {
	p := fastParser{b: body}
	if !p.skip('{') {
		return false
	}
	var seen uint8
	for {
		key, ok := p.str()
		if !ok || !p.skip(':') {
			return false
		}
		var bit uint8
		switch string(key) {
		case "to":
			bit, ok = 1, p.target(&into.to)
			req.To = &into.to
		case "action":
			bit, ok = 2, p.uint32(&into.action)
			req.Action = &into.action
		case "data":
			var s []byte
			s, ok = p.str()
			into.data = string(s)
			bit, req.Data = 4, &into.data
		case "json":
			var raw []byte
			raw, ok = p.value()
			bit, req.JSON = 8, json.RawMessage(append([]byte(nil), raw...))
		default:
			return false // unknown, or a known key in another case
		}
		if !ok || seen&bit != 0 {
			return false // a repeated key: encoding/json's rules for it are subtle
		}
		seen |= bit
		if p.skip(',') {
			continue
		}
		return p.skip('}') && p.end()
	}
}

// fastFields holds what the pointers of a pushRequest filled by parseFast
// point to, so that they cost no allocation of their own.
type fastFields struct {
	to     pushTarget
	action uint32
	data   string
}

// fastParser reads a JSON body from b[i:].
type fastParser struct {
	b []byte
	i int
}

// ws skips JSON whitespace.
func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// skip consumes c after optional whitespace, and the whitespace after it.
func (p *fastParser) skip(c byte) bool {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != c {
		return false
	}
	p.i++
	p.ws()
	return true
}

// end reports whether only whitespace is left.
func (p *fastParser) end() bool {
	p.ws()
	return p.i == len(p.b)
}

// str reads a string of printable ASCII without escapes and returns its
// contents, which are then exactly what encoding/json decodes it to.
func (p *fastParser) str() ([]byte, bool) {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			p.i = j + 1
			return p.b[start:j], true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// uint32 reads a plain decimal integer (no sign, fraction, exponent or
// leading zero) that fits in 32 bits.
func (p *fastParser) uint32(v *uint32) bool {
	p.ws()
	start, n := p.i, uint64(0)
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		n = n*10 + uint64(p.b[p.i]-'0')
		p.i++
		if n > math.MaxUint32 {
			return false
		}
	}
	digits := p.i - start
	if digits == 0 || digits > 1 && p.b[start] == '0' {
		return false
	}
	*v = uint32(n)
	return true
}

// target reads {"user":…}, {"topic":…}, {"conn":…} or {"all":true}.
func (p *fastParser) target(t *pushTarget) bool {
	*t = pushTarget{}
	if !p.skip('{') {
		return false
	}
	key, ok := p.str()
	if !ok || !p.skip(':') {
		return false
	}
	switch string(key) {
	case "all":
		if !p.literal("true") {
			return false
		}
		t.All = true
	case "user", "topic", "conn":
		v, ok := p.str()
		if !ok {
			return false
		}
		switch s := string(v); string(key) {
		case "user":
			t.User = s
		case "topic":
			t.Topic = s
		default:
			t.Conn = s
		}
	default:
		return false
	}
	return p.skip('}')
}

// literal consumes word.
func (p *fastParser) literal(word string) bool {
	p.ws()
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return false
	}
	p.i += len(word)
	return true
}

// value reads any JSON value and returns its bytes: it finds where the
// value ends (strings and nesting respected) and lets json.Valid judge
// it.
func (p *fastParser) value() ([]byte, bool) {
	p.ws()
	start, depth := p.i, 0
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch c {
		case '"':
			if !p.skipString() {
				return nil, false
			}
		case '{', '[':
			depth++
			p.i++
		case '}', ']':
			if depth == 0 {
				return p.valid(start)
			}
			depth--
			p.i++
		case ',':
			if depth == 0 {
				return p.valid(start)
			}
			p.i++
		default:
			p.i++
		}
		if depth == 0 && (c == '"' || c == '}' || c == ']') {
			return p.valid(start)
		}
	}
	return p.valid(start)
}

// valid returns b[start:i], without the whitespace at its end, if it is
// one valid JSON value.
func (p *fastParser) valid(start int) ([]byte, bool) {
	end := p.i
	for end > start && isSpace(p.b[end-1]) {
		end--
	}
	v := p.b[start:end]
	return v, len(v) > 0 && json.Valid(v)
}

// skipString moves past the string that starts at i, escapes included.
func (p *fastParser) skipString() bool {
	for j := p.i + 1; j < len(p.b); j++ {
		switch p.b[j] {
		case '\\':
			j++
		case '"':
			p.i = j + 1
			return true
		}
	}
	return false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
