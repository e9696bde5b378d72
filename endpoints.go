package wsgate

import (
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
func (s *Server) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("draining\n")) // the client went away; nothing to do
		return
	}
	_, _ = w.Write([]byte("ok\n")) // the client went away; nothing to do
}

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

// wsSubprotocols is what /ws offers; a client that offers none of it gets
// the simple form.
var wsSubprotocols = []string{wire.Subprotocol, wire.SubprotocolJSON}

// serveWS admits a client in the documented order — handshake rate, capacity,
// origin, authentication — and only then upgrades.
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
		http.Error(w, "wsgate: origin not allowed", http.StatusForbidden)
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
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
	}
	sess := &session{id: s.ids.newID(), identity: id}
	sess.expiry.set(id.Expires)
	s.readCursor(r, sess)
	_, err := s.ws.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: wsSubprotocols, CheckOrigin: s.allowOrigin, Value: sess,
	})
	if err != nil {
		s.ctr.rejInvalid.Add(1)
		return // Accept has written the HTTP error
	}
	upgraded = true // onClose releases the slot
}

// admit applies the per-IP handshake rate and the connection limit. On
// success it has reserved a slot in s.ctr.open that the caller must release
// unless the connection is established.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) bool {
	if ok, wait := s.ipLimit.allow(s.clientIP(r), s.now()); !ok {
		s.ctr.rejRate.Add(1)
		secs := int64((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
		http.Error(w, "wsgate: too many connection attempts", http.StatusTooManyRequests)
		return false
	}
	if s.draining.Load() {
		s.ctr.rejOverload.Add(1)
		http.Error(w, "wsgate: server shutting down", http.StatusServiceUnavailable)
		return false
	}
	if n := s.ctr.open.Add(1); n > int64(s.cfg.MaxConns) {
		s.ctr.open.Add(-1)
		s.ctr.rejOverload.Add(1)
		w.Header().Set("Retry-After", "5")
		http.Error(w, "wsgate: too many connections", http.StatusServiceUnavailable)
		return false
	}
	return true
}

// clientIP is the address the per-IP handshake limit counts: the TCP peer,
// or, when the peer is a trusted proxy, the client it names.
func (s *Server) clientIP(r *http.Request) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	addr := peer.Addr().Unmap()
	if !s.trusted(addr) {
		return addr.String()
	}
	if ip, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-IP"))); err == nil {
		return ip.Unmap().String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		ip, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed entry: everything left of it is unverifiable
		}
		if ip = ip.Unmap(); !s.trusted(ip) {
			return ip.String()
		}
	}
	return addr.String()
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
	for _, o := range s.cfg.AllowedOrigins {
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

// readCursor fetches, for a full-form client of a shared Broker, its user's
// last sequence for the hello, here on the HTTP goroutine because it may
// wait for the network and onOpen must not. The in-memory broker is read
// in onOpen instead. When the broker is unreachable the hello says 0 and
// the client's resume sorts things out once it is back.
func (s *Server) readCursor(r *http.Request, sess *session) {
	if s.local || sess.identity.UserID == "" || !offersFullForm(r) {
		return
	}
	c, err := s.broker.Cursor(r.Context(), sess.identity.UserID)
	if err != nil {
		s.cfg.Logger.Warn("wsgate: reading the user's sequence", "user", sess.identity.UserID, "err", err)
		return
	}
	sess.seq = c.Last
}

// offersFullForm reports whether the handshake offers a subprotocol of the
// full form, which Accept will then choose.
func offersFullForm(r *http.Request) bool {
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p == wire.Subprotocol || p == wire.SubprotocolJSON {
				return true
			}
		}
	}
	return false
}
