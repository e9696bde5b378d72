package wsgate

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// newMux routes the gateway's endpoints. "/" is special: a WebSocket upgrade
// there is an echo connection (classic clients expect one at the root), and
// anything else goes to Config.Page.
func (s *Server) newMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWS)
	mux.HandleFunc("GET /healthz", serveHealthz)
	mux.HandleFunc("GET /readyz", s.serveReadyz)
	if s.echo != nil {
		mux.HandleFunc("/echo", s.serveEcho)
	}
	mux.HandleFunc("/", s.serveRoot)
	return mux
}

func serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n")) // the client went away; nothing to do
}

// serveReadyz tells load balancers to stop sending clients once Shutdown
// has begun.
// serveReadyz answers 503 while the Server drains or its broker does not
// answer (a node that cannot number pushes should get no new clients).
func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("draining\n")) // the client went away; nothing to do
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyzBrokerTimeout)
	defer cancel()
	if err := s.broker.Ping(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("broker unreachable: " + err.Error() + "\n")) // the client went away; nothing to do
		return
	}
	_, _ = w.Write([]byte("ok\n")) // the client went away; nothing to do
}

// readyzBrokerTimeout bounds the broker check of /readyz, well inside the
// probe timeouts of load balancers and Kubernetes (1 s by default).
const readyzBrokerTimeout = 500 * time.Millisecond

func (s *Server) serveRoot(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/" && s.echo != nil && isUpgrade(r) {
		s.serveEcho(w, r)
		return
	}
	if s.cfg.Page != nil {
		s.cfg.Page.ServeHTTP(w, r)
		return
	}
	http.NotFound(w, r)
}

// isUpgrade reports whether r asks for a WebSocket upgrade.
func isUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// maxUserIDLen is the longest user id the hello can carry: a longer one
// from Authenticate is refused before the upgrade, not after it.
const maxUserIDLen = 65535

// wsSubprotocols is what /ws offers; a client that offers none of it gets
// the simple form.
var wsSubprotocols = []string{wire.Subprotocol, wire.SubprotocolJSON}

// serveWS admits a client in the documented order — handshake rate, capacity,
// origin, authentication, the user's connections — and only then upgrades.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r) {
		return
	}
	upgraded := false
	defer func() {
		if !upgraded {
			s.ctr.open.Add(-1)
		}
	}()
	if !s.allowOrigin(r) {
		s.ctr.rejOrigin.Add(1)
		s.reject(w, r, http.StatusForbidden, "origin not allowed: "+limitReason(r.Header.Get("Origin")), "wsgate: origin not allowed")
		return
	}
	var id Identity
	if s.cfg.Authenticate != nil {
		var err error
		if id, err = s.cfg.Authenticate(r.Context(), r); err != nil {
			s.ctr.rejAuth.Add(1)
			if s.refuseInBand(w, r, err) {
				upgraded = true // onClose releases the slot
				return
			}
			w.Header().Set("WWW-Authenticate", "Bearer")
			s.reject(w, r, http.StatusUnauthorized, limitReason(err.Error()), err.Error())
			return
		}
		if len(id.UserID) > maxUserIDLen {
			s.ctr.rejAuth.Add(1)
			w.Header().Set("WWW-Authenticate", "Bearer")
			msg := "wsgate: user id longer than " + strconv.Itoa(maxUserIDLen) + " bytes"
			s.reject(w, r, http.StatusUnauthorized, msg, msg)
			return
		}
	}
	if !s.allowUser(w, r, id.UserID) {
		return
	}
	sess := &session{id: s.ids.newID(), identity: connIdentity{UserID: id.UserID, Topics: allowTopics(id.Topics)}}
	sess.expiry.set(id.Expires)
	if v := resumeParam(r); v != "" {
		epoch, seq, err := wire.ParseResume(v)
		if err != nil {
			s.ctr.rejInvalid.Add(1)
			s.reject(w, r, http.StatusBadRequest, "bad resume position", err.Error())
			return
		}
		sess.epoch, sess.seq, sess.resuming = epoch, seq, true
	}
	rec := &statusRecorder{ResponseWriter: w}
	_, err := s.ws.Accept(rec, r, &websocket.AcceptOptions{
		Subprotocols: wsSubprotocols, CheckOrigin: s.allowOrigin, Value: sess,
	})
	if err != nil {
		s.ctr.rejInvalid.Add(1)
		s.acceptFailed(rec, r, err)
		return // Accept has written the HTTP error
	}
	s.ctr.hs.count(http.StatusSwitchingProtocols)
	upgraded = true // onClose releases the slot
}

// allowUser applies MaxConnsPerUser, answering 429 when user already holds
// that many connections on this node. The count walks the user's
// connections, which the limit keeps short.
func (s *Server) allowUser(w http.ResponseWriter, r *http.Request, user string) bool {
	lim := s.cfg.MaxConnsPerUser
	if lim < 0 || user == "" || s.reg.userCount(user) < lim {
		return true
	}
	s.ctr.rejUser.Add(1)
	w.Header().Set("Retry-After", "5")
	s.reject(w, r, http.StatusTooManyRequests, "MaxConnsPerUser reached", "wsgate: too many connections for this user")
	return false
}

// resumeParam returns the handshake's resume position, "" if none; a
// request without a query does not pay for parsing one.
func resumeParam(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return ""
	}
	return r.URL.Query().Get(wire.ResumeParam)
}

// admit applies the per-IP handshake rate and the connection limit. On
// success it has reserved a slot in s.ctr.open that the caller must release
// unless the connection is established.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) bool {
	if !s.allowHandshake(w, r) {
		return false
	}
	if s.draining.Load() {
		s.ctr.rejOverload.Add(1)
		s.reject(w, r, http.StatusServiceUnavailable, "shutting down", "wsgate: server shutting down")
		return false
	}
	if n := s.ctr.open.Add(1); n > int64(s.cfg.MaxConns) {
		s.ctr.open.Add(-1)
		s.ctr.rejOverload.Add(1)
		w.Header().Set("Retry-After", "5")
		s.reject(w, r, http.StatusServiceUnavailable, "MaxConns reached", "wsgate: too many connections")
		return false
	}
	return true
}

// allowHandshake applies the per-IP handshake rate, answering 429 when it
// is exceeded. IPv6 clients are counted by their /64, as the per-IP bound
// on pending connections counts them (perIPKey): a single host can draw
// any number of addresses from its network.
func (s *Server) allowHandshake(w http.ResponseWriter, r *http.Request) bool {
	if s.ipLimit == nil {
		return true
	}
	ok, wait := s.ipLimit.allow(perIPKey(s.clientAddr(r)), s.now())
	if !ok {
		s.ctr.rejRate.Add(1)
		secs := int64((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
		s.reject(w, r, http.StatusTooManyRequests, "handshake rate exceeded", "wsgate: too many connection attempts")
	}
	return ok
}

// clientIP is clientAddr as text, for logs; the peer's address as net/http
// gave it when it is not an IP and port.
func (s *Server) clientIP(r *http.Request) string {
	if addr := s.clientAddr(r); addr.IsValid() {
		return addr.String()
	}
	return r.RemoteAddr
}

// clientAddr is the client's address: the TCP peer, or, when the peer is
// a trusted proxy, the client it names. It is the zero Addr when the peer
// is not an IP and port (a listener of another kind).
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := peer.Addr().Unmap()
	if !s.trusted(addr) {
		return addr
	}
	if ip, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-IP"))); err == nil {
		return ip.Unmap()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		ip, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed entry: everything left of it is unverifiable
		}
		if ip = ip.Unmap(); !s.trusted(ip) {
			return ip
		}
	}
	return addr
}

func (s *Server) trusted(ip netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// allowOrigin implements the origin policy: no Origin header (non-browser
// clients), the same host as the request, or a configured origin.
func (s *Server) allowOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, o := range *s.origins.Load() {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}
