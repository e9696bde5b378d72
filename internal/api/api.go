// Package api is wsgate's server-to-server HTTP API: the application's backend pushes
// messages to users, topics, connections or everyone, and asks who is online.
//
//	POST /api/v1/push              {"to":{"user":"alice"},"action":120,"data":"<base64>"} → {"delivered":N,"seq":S,"epoch":E}
//	GET  /api/v1/presence/{user}   → {"user":"alice","online":true,"connections":2,"epoch":E,"seq":S,"acked":A}
//	GET  /api/v1/stats             → the gateway's counters
//
// Every request carries `Authorization: Bearer <api key>`; the key is compared in
// constant time. Errors are JSON {"error":"..."} with a 4xx/5xx status. docs/API.md and
// docs/openapi.yaml describe the API for people and generators.
package api

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/wsgate/wsgate"
)

// DefaultMaxPayload bounds a push payload when Config.MaxPayload is zero.
const DefaultMaxPayload = 64 << 10

// Config configures the API handler.
type Config struct {
	APIKey     string       // required; requests must carry it as a Bearer token
	MaxPayload int          // largest push payload in bytes; default DefaultMaxPayload
	Logger     *slog.Logger // nil = discard
}

// API serves the HTTP API for one gateway.
type API struct {
	gw     *wsgate.Server
	key    []byte
	max    int
	logger *slog.Logger
	mux    *http.ServeMux

	decoders sync.Pool // of *bodyDecoder
	states   sync.Pool // of *pushState
}

// New returns the API for gw. It fails when no API key is configured: an open push
// endpoint would let anyone message every user.
func New(gw *wsgate.Server, cfg Config) (*API, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("wsgate: the HTTP API needs an API key")
	}
	a := &API{gw: gw, key: []byte(cfg.APIKey), max: cfg.MaxPayload, logger: cfg.Logger}
	if a.max <= 0 {
		a.max = DefaultMaxPayload
	}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	a.mux = http.NewServeMux()
	for _, r := range []struct {
		method, path string
		h            http.HandlerFunc
	}{
		{http.MethodPost, "/api/v1/push", a.push},
		{http.MethodGet, "/api/v1/presence/{user}", a.presence},
		{http.MethodGet, "/api/v1/stats", a.stats},
	} {
		a.mux.HandleFunc(r.method+" "+r.path, r.h)
		// The same path with any other method: 405 with Allow, in JSON
		// like every API error (the catch-all below would say 404).
		a.mux.HandleFunc(r.path, methodNotAllowed(r.method))
	}
	a.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "wsgate: no such API endpoint "+r.Method+" "+r.URL.Path)
	})
	return a, nil
}

// ServeHTTP checks the API key and routes the request.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !a.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wsgate-api"`)
		writeError(w, http.StatusUnauthorized, "wsgate: missing or wrong API key (Authorization: Bearer <key>)")
		return
	}
	if r.Method == http.MethodPost && r.URL.Path == "/api/v1/push" && r.URL.RawPath == "" {
		a.push(w, r) // the call that comes by the thousand: what the mux would pick, without its lookup
		return
	}
	a.mux.ServeHTTP(w, r)
}

func (a *API) authorized(r *http.Request) bool {
	var auth string
	if v := r.Header["Authorization"]; len(v) > 0 { // Header.Get without canonicalising a canonical name
		auth = v[0]
	}
	scheme, key, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), a.key) == 1
}

func (a *API) presence(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	st, err := a.gw.UserStatus(r.Context(), user)
	if err != nil {
		a.logger.Warn("presence failed", "user", user, "err", err)
		writeError(w, http.StatusServiceUnavailable, "wsgate: presence unavailable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user": user, "online": st.Conns > 0, "connections": st.Conns, "epoch": st.Epoch, "seq": st.Seq, "acked": st.Acked,
	})
}

func (a *API) stats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.gw.Stats())
}

// methodNotAllowed answers a known path asked with the wrong method. A
// GET route also serves HEAD.
func methodNotAllowed(method string) http.HandlerFunc {
	allow := method
	if method == http.MethodGet {
		allow = "GET, HEAD"
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "wsgate: "+r.Method+" not allowed on "+r.URL.Path+"; use "+allow)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

// writeRaw writes body, which is JSON already.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = jsonContentType // Header.Set without its allocation
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client went away; nothing to do
}

// jsonContentType is the Content-Type value of writeRaw's answers, shared
// by all of them: net/http only reads a handler's header values, and an
// Add to this one would reallocate it (its capacity is its length).
var jsonContentType = []string{"application/json"}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
