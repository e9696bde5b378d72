package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	secret = []byte("0123456789abcdef0123456789abcdef")
	t0     = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
)

func clock(t time.Time) func() time.Time { return func() time.Time { return t } }

func hsVerifier(t *testing.T, now time.Time) *Verifier {
	t.Helper()
	v, err := NewVerifier(Config{Secret: secret, Now: clock(now)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyHS256(t *testing.T) {
	good, err := Issue(secret, "alice", time.Hour, []string{"news", "chat.*"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := Issue([]byte("another-secret-of-32-bytes-long!"), "alice", time.Hour, nil, t0)
	future := sign(t, jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{
		Subject: "alice", NotBefore: jwt.NewNumericDate(t0.Add(time.Hour)), ExpiresAt: jwt.NewNumericDate(t0.Add(2 * time.Hour)),
	})
	noSub := sign(t, jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour))})
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.RegisteredClaims{Subject: "mallory"})
	hs512 := sign(t, jwt.SigningMethodHS512, secret, jwt.RegisteredClaims{Subject: "alice"})

	tests := []struct {
		name  string
		token string
		now   time.Time
		want  error // nil: valid
	}{
		{"valid", good, t0.Add(time.Minute), nil},
		{"expired", good, t0.Add(2 * time.Hour), ErrExpired},
		{"not yet valid", future, t0, ErrNotYetValid},
		{"other secret", other, t0, ErrBadSignature},
		{"no subject", noSub, t0, ErrNoSubject},
		{"alg none", none, t0, nil},
		{"alg HS512 refused", hs512, t0, nil},
		{"garbage", "not.a.jwt", t0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := hsVerifier(t, tt.now).Verify(tt.token)
			switch {
			case tt.name == "valid":
				if err != nil {
					t.Fatalf("got error %v, want valid", err)
				}
				if c.UserID != "alice" || !slices.Equal(c.Topics, []string{"news", "chat.*"}) {
					t.Fatalf("got claims %+v, want alice with topics", c)
				}
			case tt.want != nil:
				if !errors.Is(err, tt.want) {
					t.Fatalf("got error %v, want %v", err, tt.want)
				}
			default:
				if err == nil {
					t.Fatalf("got valid claims %+v, want an error", c)
				}
			}
		})
	}
}

func publicPEM(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerifyPublicKeys(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.RegisteredClaims{Subject: "bob", ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour))}
	tests := []struct {
		name   string
		pub    any
		method jwt.SigningMethod
		key    any
		ok     bool
	}{
		{"RS256", &rsaKey.PublicKey, jwt.SigningMethodRS256, rsaKey, true},
		{"ES256", &ecKey.PublicKey, jwt.SigningMethodES256, ecKey, true},
		{"RS256 key, ES256 token", &rsaKey.PublicKey, jwt.SigningMethodES256, ecKey, false},
		// The classic confusion attack: HMAC-sign with the public key's bytes.
		{"RS256 key, HS256 token", &rsaKey.PublicKey, jwt.SigningMethodHS256, publicPEM(t, &rsaKey.PublicKey), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(Config{PublicKeyPEM: publicPEM(t, tt.pub), Now: clock(t0)})
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Verify(sign(t, tt.method, tt.key, claims))
			if tt.ok && (err != nil || c.UserID != "bob") {
				t.Fatalf("got %+v, %v; want bob", c, err)
			}
			if !tt.ok && err == nil {
				t.Fatalf("got valid claims %+v, want an error", c)
			}
		})
	}
}

func TestNewVerifierConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"nothing":      {},
		"both":         {Secret: secret, PublicKeyPEM: []byte("x")},
		"short secret": {Secret: []byte("short")},
		"not pem":      {PublicKeyPEM: []byte("hello")},
	} {
		if _, err := NewVerifier(cfg); err == nil {
			t.Errorf("%s: got nil error, want one", name)
		}
	}
}

func TestTokenFromRequest(t *testing.T) {
	tests := []struct {
		name  string
		setup func(r *http.Request)
		want  string
	}{
		{"none", func(*http.Request) {}, ""},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") }, "abc"},
		{"bearer lower case", func(r *http.Request) { r.Header.Set("Authorization", "bearer abc") }, "abc"},
		{"basic ignored", func(r *http.Request) { r.Header.Set("Authorization", "Basic abc") }, ""},
		{"cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: CookieName, Value: "c1"}) }, "c1"},
		{"query", func(r *http.Request) { r.URL.RawQuery = "token=q1" }, "q1"},
		{"header wins", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer h")
			r.URL.RawQuery = "token=q"
		}, "h"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/ws", nil)
		tt.setup(r)
		if got := TokenFromRequest(r); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestFromRequest(t *testing.T) {
	v := hsVerifier(t, t0)
	if _, err := v.FromRequest(httptest.NewRequest(http.MethodGet, "/ws", nil)); !errors.Is(err, ErrNoToken) {
		t.Fatalf("got %v, want ErrNoToken", err)
	}
	tok, _ := Issue(secret, "carol", time.Hour, nil, t0)
	c, err := v.FromRequest(httptest.NewRequest(http.MethodGet, "/ws?token="+tok, nil))
	if err != nil || c.UserID != "carol" || c.Topics != nil {
		t.Fatalf("got %+v, %v; want carol without topic restriction", c, err)
	}
}

// TestTokenHygiene: exp is required unless AllowNoExpiry, claims are
// bounded in size (with an error that names the bound), Leeway forgives
// clock skew and no more.
func TestTokenHygiene(t *testing.T) {
	exp := jwt.NewNumericDate(t0.Add(time.Hour))
	tok := func(c jwt.Claims) string { return sign(t, jwt.SigningMethodHS256, secret, c) }
	noExp := tok(jwt.RegisteredClaims{Subject: "alice"})
	longSub := tok(jwt.RegisteredClaims{Subject: strings.Repeat("x", MaxSubjectBytes+1), ExpiresAt: exp})
	maxSub := tok(jwt.RegisteredClaims{Subject: strings.Repeat("x", MaxSubjectBytes), ExpiresAt: exp})
	many := tok(tokenClaims{Topics: make([]string, MaxTopics+1), RegisteredClaims: jwt.RegisteredClaims{Subject: "a", ExpiresAt: exp}})
	longTopic := tok(tokenClaims{Topics: []string{strings.Repeat("t", MaxTopicPatternBytes+1)}, RegisteredClaims: jwt.RegisteredClaims{Subject: "a", ExpiresAt: exp}})
	huge := tok(jwt.RegisteredClaims{Subject: "a", ExpiresAt: exp, ID: strings.Repeat("j", MaxTokenBytes)})
	justExpired := tok(jwt.RegisteredClaims{Subject: "a", ExpiresAt: jwt.NewNumericDate(t0.Add(-10 * time.Second))})
	longExpired := tok(jwt.RegisteredClaims{Subject: "a", ExpiresAt: jwt.NewNumericDate(t0.Add(-time.Minute))})
	noIss := tok(jwt.RegisteredClaims{Subject: "a", ExpiresAt: exp})

	tests := []struct {
		name  string
		cfg   Config
		token string
		want  string // "" = valid; else a substring of the error
	}{
		{"no exp", Config{}, noExp, ErrNoExpiry.Error()},
		{"no exp allowed", Config{AllowNoExpiry: true}, noExp, ""},
		{"sub too long", Config{}, longSub, "sub claim is 1025 bytes, at most 1024"},
		{"sub at the bound", Config{}, maxSub, ""},
		{"too many topics", Config{}, many, "257 entries, at most 256"},
		{"topic too long", Config{}, longTopic, "entry of 257 bytes, at most 256"},
		{"token too long", Config{}, huge, ErrTooLong.Error()},
		{"expired within leeway", Config{Leeway: 30 * time.Second}, justExpired, ""},
		{"expired beyond leeway", Config{Leeway: 30 * time.Second}, longExpired, ErrExpired.Error()},
		{"expired without leeway", Config{}, justExpired, ErrExpired.Error()},
		{"missing iss is not missing exp", Config{Issuer: "me"}, noIss, "iss"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Secret, cfg.Now = secret, clock(t0)
			v, err := NewVerifier(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(tt.token)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got error %v, want valid", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
