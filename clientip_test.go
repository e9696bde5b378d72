package wsgate

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	s := &Server{cfg: Config{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"),
	}}}
	tests := []struct {
		name, peer, realIP, xff, want string
	}{
		{"direct client", "203.0.113.7:5000", "", "", "203.0.113.7"},
		{"untrusted peer's headers are ignored", "203.0.113.7:5000", "1.2.3.4", "1.2.3.4", "203.0.113.7"},
		{"trusted proxy, X-Real-IP", "127.0.0.1:5000", "198.51.100.1", "", "198.51.100.1"},
		{"trusted proxy, X-Forwarded-For", "127.0.0.1:5000", "", "198.51.100.1", "198.51.100.1"},
		{"spoofed left entry skipped", "127.0.0.1:5000", "", "6.6.6.6, 198.51.100.1, 10.0.0.2", "198.51.100.1"},
		{"malformed entry stops the walk", "127.0.0.1:5000", "", "198.51.100.1, junk", "127.0.0.1"},
		{"trusted proxy without headers", "127.0.0.1:5000", "", "", "127.0.0.1"},
		{"IPv4-mapped peer", "[::ffff:127.0.0.1]:5000", "198.51.100.1", "", "198.51.100.1"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/ws", nil)
		r.RemoteAddr = tt.peer
		if tt.realIP != "" {
			r.Header.Set("X-Real-IP", tt.realIP)
		}
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := s.clientIP(r); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}
