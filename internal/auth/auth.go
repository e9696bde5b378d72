// Package auth verifies the JSON Web Tokens that clients present when they open a
// WebSocket to wsgate, and issues tokens for demos and tests.
//
// A token may arrive three ways, tried in this order: an `Authorization: Bearer`
// header (Go and server-side clients), a `wsgate_token` cookie (browsers on the same
// site), or a `token` query parameter (browsers cannot set headers on a WebSocket).
// The `sub` claim is the user id; `exp` is required (Config.AllowNoExpiry relaxes
// that) and `nbf` honoured, within Config.Leeway of clock skew; an optional `topics`
// claim (a list of topic names, a trailing "*" matching any suffix) restricts what the
// user may subscribe to.
//
// Sizes are bounded before anything is parsed or stored: a token of more than
// MaxTokenBytes, a `sub` of more than MaxSubjectBytes and a `topics` claim of more
// than MaxTopics entries or an entry longer than MaxTopicPatternBytes are refused
// with an error that says which (HTTP 401 on the handshake).
//
// Verification is HS256 with a shared secret, or RS256/ES256 with a public key. The
// accepted algorithm is fixed by the configuration, never taken from the token, so a
// token signed with "none" or with the public key used as an HMAC secret is refused.
package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wsgate/wsgate"

	"github.com/golang-jwt/jwt/v5"
)

// CookieName is the cookie a browser may carry its token in.
const CookieName = "wsgate_token"

// Bounds on what a token may carry.
const (
	MaxTokenBytes        = 8 << 10
	MaxSubjectBytes      = 1024
	MaxTopics            = 256
	MaxTopicPatternBytes = 256 // wire.MaxTopicLen plus a trailing "*"
)

// Sentinel errors; the message of each is what a rejected client sees in the 401 body.
var (
	ErrNoExpiry     = errors.New("wsgate: token has no exp claim")
	ErrTooLong      = fmt.Errorf("wsgate: token longer than %d bytes", MaxTokenBytes)
	ErrNoToken      = errors.New("wsgate: missing token (Authorization: Bearer, cookie wsgate_token or ?token=)")
	ErrExpired      = errors.New("wsgate: token expired")
	ErrNotYetValid  = errors.New("wsgate: token not valid yet")
	ErrBadSignature = errors.New("wsgate: token signature invalid")
	ErrNoSubject    = errors.New("wsgate: token has no sub claim")
)

// Config selects how tokens are verified. Exactly one of Secret and PublicKeyPEM is set.
type Config struct {
	Secret       []byte           // HS256 shared secret
	PublicKeyPEM []byte           // PEM "PUBLIC KEY" (RSA → RS256, ECDSA → ES256)
	Issuer       string           // if set, the iss claim must match
	Audience     string           // if set, the aud claim must contain it
	Leeway       time.Duration    // clock skew allowed on exp/nbf; default 0
	Now          func() time.Time // clock; default time.Now
	// AllowNoExpiry accepts tokens without an exp claim, which are then
	// valid forever. Default false: a token must expire.
	AllowNoExpiry bool
}

// Claims is what a verified token says about its holder.
type Claims struct {
	UserID  string
	Topics  []string  // nil: no restriction
	Expires time.Time // zero: the token has no exp claim
}

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	key     any
	keyFunc jwt.Keyfunc // returns key; made once, not per token
	parser  *jwt.Parser
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg Config) (*Verifier, error) {
	key, method, err := verificationKey(cfg)
	if err != nil {
		return nil, err
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods([]string{method}), jwt.WithLeeway(cfg.Leeway)}
	if !cfg.AllowNoExpiry {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if cfg.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(cfg.Now))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v := &Verifier{key: key, parser: jwt.NewParser(opts...)}
	v.keyFunc = func(*jwt.Token) (any, error) { return v.key, nil }
	return v, nil
}

func verificationKey(cfg Config) (key any, method string, err error) {
	switch {
	case len(cfg.Secret) > 0 && len(cfg.PublicKeyPEM) > 0:
		return nil, "", errors.New("wsgate: set either a JWT secret or a public key, not both")
	case len(cfg.Secret) > 0:
		if len(cfg.Secret) < 16 {
			return nil, "", errors.New("wsgate: JWT secret must be at least 16 bytes")
		}
		return cfg.Secret, jwt.SigningMethodHS256.Alg(), nil
	case len(cfg.PublicKeyPEM) > 0:
		return parsePublicKey(cfg.PublicKeyPEM)
	default:
		return nil, "", errors.New("wsgate: no JWT secret or public key configured")
	}
}

func parsePublicKey(pemBytes []byte) (any, string, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, "", errors.New("wsgate: public key file is not PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("wsgate: parse public key: %w", err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return k, jwt.SigningMethodRS256.Alg(), nil
	case *ecdsa.PublicKey:
		return k, jwt.SigningMethodES256.Alg(), nil
	default:
		return nil, "", fmt.Errorf("wsgate: unsupported public key type %T (want RSA or ECDSA)", pub)
	}
}

type tokenClaims struct {
	Topics []string `json:"topics,omitempty"`
	jwt.RegisteredClaims
}

// Verify checks a token and returns its claims. Errors are safe to show the client.
func (v *Verifier) Verify(token string) (Claims, error) {
	if len(token) > MaxTokenBytes {
		return Claims{}, ErrTooLong
	}
	var tc tokenClaims
	_, err := v.parser.ParseWithClaims(token, &tc, v.keyFunc)
	if err != nil {
		return Claims{}, classify(err, tc.ExpiresAt == nil)
	}
	if tc.Subject == "" {
		return Claims{}, ErrNoSubject
	}
	if err := checkSizes(&tc); err != nil {
		return Claims{}, err
	}
	c := Claims{UserID: tc.Subject, Topics: tc.Topics}
	if tc.ExpiresAt != nil {
		c.Expires = tc.ExpiresAt.Time
	}
	return c, nil
}

// checkSizes applies the bounds on claims that the gateway keeps for the
// connection's life and sends back (the user id goes into the hello).
func checkSizes(tc *tokenClaims) error {
	if n := len(tc.Subject); n > MaxSubjectBytes {
		return fmt.Errorf("wsgate: token sub claim is %d bytes, at most %d allowed", n, MaxSubjectBytes)
	}
	if n := len(tc.Topics); n > MaxTopics {
		return fmt.Errorf("wsgate: token topics claim has %d entries, at most %d allowed", n, MaxTopics)
	}
	for _, t := range tc.Topics {
		if n := len(t); n > MaxTopicPatternBytes {
			return fmt.Errorf("wsgate: token topics claim has an entry of %d bytes, at most %d allowed", n, MaxTopicPatternBytes)
		}
	}
	return nil
}

// classify maps the jwt library's errors onto the few a client needs to tell apart.
// noExpiry: the token had no exp claim (the parser fills the claims before
// validating them).
func classify(err error, noExpiry bool) error {
	switch {
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && noExpiry:
		return ErrNoExpiry
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrBadSignature
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errors.New("wsgate: token malformed")
	default:
		return fmt.Errorf("wsgate: token rejected: %w", err)
	}
}

// FromRequest finds the token in r and verifies it.
func (v *Verifier) FromRequest(r *http.Request) (Claims, error) {
	tok := TokenFromRequest(r)
	if tok == "" {
		return Claims{}, ErrNoToken
	}
	return v.Verify(tok)
}

// Authenticate is FromRequest shaped as wsgate.Config.Authenticate: the token's
// subject becomes the user and its topics claim the subscription allow-list.
func (v *Verifier) Authenticate(_ context.Context, r *http.Request) (wsgate.Identity, error) {
	c, err := v.FromRequest(r)
	if err != nil {
		return wsgate.Identity{}, err
	}
	return wsgate.Identity{UserID: c.UserID, Topics: c.Topics, Expires: c.Expires}, nil
}

// TokenFromRequest returns the token carried by r, or "" if there is none.
func TokenFromRequest(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
	}
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		return c.Value
	}
	return r.URL.Query().Get("token")
}

// Issue returns an HS256 token for user, valid for ttl, restricted to topics when
// topics is non-nil. It serves demos, tests and `wsgate token`.
func Issue(secret []byte, user string, ttl time.Duration, topics []string, now time.Time) (string, error) {
	if user == "" {
		return "", ErrNoSubject
	}
	tc := tokenClaims{
		Topics: topics,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   user,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, tc).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("wsgate: sign token: %w", err)
	}
	return s, nil
}
