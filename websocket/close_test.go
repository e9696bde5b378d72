package websocket

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestStatusCodeString(t *testing.T) {
	tests := []struct {
		code StatusCode
		want string
	}{
		{StatusNormalClosure, "normal closure"},
		{StatusProtocolError, "protocol error"},
		{StatusMessageTooBig, "message too big"},
		{StatusNoStatusRcvd, "no status received"},
		{4000, "StatusCode(4000)"},
	}
	for _, tc := range tests {
		if got := tc.code.String(); got != tc.want {
			t.Errorf("%d: got %q, want %q", int(tc.code), got, tc.want)
		}
	}
}

func TestCloseError(t *testing.T) {
	err := &CloseError{Code: StatusNormalClosure, Reason: "bye"}
	if got, want := err.Error(), "websocket: close 1000 (normal closure): bye"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	noReason := &CloseError{Code: StatusGoingAway}
	if got, want := noReason.Error(), "websocket: close 1001 (going away)"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("read: %w", &CloseError{Code: 4001})
	if got := CloseStatus(wrapped); got != 4001 {
		t.Fatalf("got %d, want 4001", got)
	}
	if got := CloseStatus(errors.New("eof")); got != -1 {
		t.Fatalf("got %d, want -1", got)
	}
	if got := CloseStatus(nil); got != -1 {
		t.Fatalf("got %d for nil, want -1", got)
	}
}

func TestValidCloseCode(t *testing.T) {
	valid := map[StatusCode]bool{}
	for c := StatusCode(1000); c <= 1003; c++ {
		valid[c] = true
	}
	for c := StatusCode(1007); c <= 1014; c++ {
		valid[c] = true
	}
	for c := StatusCode(3000); c <= 4999; c++ {
		valid[c] = true
	}
	for c := StatusCode(-1); c <= 70000; c++ {
		if got := validCloseCode(c); got != valid[c] {
			t.Fatalf("%d: got %v, want %v", int(c), got, valid[c])
		}
	}
}

func TestClosePayload(t *testing.T) {
	long := strings.Repeat("é", 70) // 140 bytes of 2-byte runes
	tests := []struct {
		name   string
		code   StatusCode
		reason string
		want   string
	}{
		{"normal", 1000, "bye", "\x03\xe8bye"},
		{"no reason", 4000, "", "\x0f\xa0"},
		{"1005 is not sent", StatusNoStatusRcvd, "x", ""},
		{"1006 is not sent", StatusAbnormalClosure, "", ""},
		{"1015 is not sent", StatusTLSHandshake, "", ""},
		{"out of range", 5000, "", ""},
		{"cut on rune boundary", 1000, long, "\x03\xe8" + long[:122]},
		{"exactly 123", 1000, strings.Repeat("a", 123), "\x03\xe8" + strings.Repeat("a", 123)},
		{"invalid utf8 replaced", 1000, "a\xffb", "\x03\xe8a\uFFFDb"},
	}
	for _, tc := range tests {
		got := closePayload(tc.code, tc.reason)
		if string(got) != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
		if len(got) > maxControlPayload || (len(got) > 2 && !utf8.Valid(got[2:])) {
			t.Errorf("%s: got %d bytes, valid UTF-8 %v", tc.name, len(got), utf8.Valid(got[2:]))
		}
		if len(got) >= 2 { // the parser accepts what we send
			code, reason, err := parseClosePayload(got)
			if err != nil || code != tc.code || reason != string(got[2:]) {
				t.Errorf("%s: parse back: got %d %q %v", tc.name, int(code), reason, err)
			}
		}
	}
}
