package web

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/broker"
	"github.com/wsgate/wsgate/internal/metrics"
)

// Gateway is what the admin view reads: *wsgate.Server.
type Gateway interface {
	Stats() wsgate.Stats
	UserStatus(ctx context.Context, user string) (broker.UserStatus, error)
}

// AdminConfig configures the admin view.
type AdminConfig struct {
	APIKey string // required: the password of the view (any user name) or a Bearer token
	Node   string // this node's name in the view, e.g. host:port
	// Peers reaches the other nodes of a cluster (the Redis broker does):
	// the view then shows every live node. nil: this node alone.
	Peers Peers
}

// Peers is how the admin view of one node learns the numbers of the
// others: each node publishes its own (SetNodeInfo is given NodeInfo) and
// reads theirs.
type Peers interface {
	SetNodeInfo(info func() []byte)
	NodeInfos(ctx context.Context) (map[string][]byte, error)
}

// Admin serves the live admin view under /admin:
//
//	GET /admin             the page (admin.html; charts drawn by admin.js)
//	GET /admin/admin.js    its script
//	GET /admin/stats       this node's numbers as JSON, polled by the page
//	GET /admin/user/{user} one user's presence and sequence (as the API's presence)
//
// Every request must carry the API key, as the password of HTTP Basic
// authentication (the browser asks once) or as a Bearer token, and come
// from the gateway's own origin: the view is read-only, and cross-site
// requests are refused before they reach it.
func Admin(gw Gateway, cfg AdminConfig) http.Handler {
	a := &admin{gw: gw, cfg: cfg, key: []byte(cfg.APIKey)}
	if cfg.Peers != nil {
		cfg.Peers.SetNodeInfo(func() []byte {
			b, _ := json.Marshal(a.self()) // plain data: cannot fail
			return b
		})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin", a.page("static/admin/index.html"))
	mux.HandleFunc("GET /admin/admin.js", a.page("static/admin/admin.js"))
	mux.HandleFunc("GET /admin/stats", a.stats)
	mux.HandleFunc("GET /admin/user/{user}", a.user)
	mux.HandleFunc("/admin/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "wsgate: no such admin path"})
	})
	return a.guard(mux)
}

type admin struct {
	gw  Gateway
	cfg AdminConfig
	key []byte
}

// guard applies the admin view's security headers, the same-origin rule
// and the API key to every request.
func (a *admin) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		if !sameOrigin(r) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "wsgate: the admin view answers only its own origin"})
			return
		}
		if !a.authorized(r) {
			h.Set("WWW-Authenticate", `Basic realm="wsgate admin (password: the API key)", charset="UTF-8"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "wsgate: the admin view needs the API key (Basic auth password, or Authorization: Bearer KEY)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin refuses requests a browser made for another site: by
// Sec-Fetch-Site where the browser sends it, else by Origin. Requests
// without either (curl, a typed URL in old browsers) pass.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

func (a *admin) authorized(r *http.Request) bool {
	var got string
	if _, pass, ok := r.BasicAuth(); ok {
		got = pass
	} else if scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		got = strings.TrimSpace(key)
	} else {
		return false
	}
	return len(a.key) > 0 && subtle.ConstantTimeCompare([]byte(got), a.key) == 1
}

// page serves one embedded file.
func (a *admin) page(name string) http.HandlerFunc {
	ctype := "text/html; charset=utf-8"
	if strings.HasSuffix(name, ".js") {
		ctype = "text/javascript; charset=utf-8"
	}
	return func(w http.ResponseWriter, _ *http.Request) {
		b, err := files.ReadFile(name)
		if err != nil {
			http.Error(w, "wsgate: "+err.Error(), http.StatusInternalServerError) // a build without the file: a bug
			return
		}
		w.Header().Set("Content-Type", ctype)
		_, _ = w.Write(b) // the client went away; nothing to do
	}
}

// NodeStats is one node's numbers in the admin view. Counters only grow;
// the page turns them into rates.
type NodeStats struct {
	Node          string            `json:"node"`
	Self          bool              `json:"self"` // the node that answered
	Conns         int               `json:"conns"`
	EchoConns     int               `json:"echo_conns"`
	Users         int               `json:"users"`
	Topics        int               `json:"topics"`
	Handshakes    map[string]uint64 `json:"handshakes"` // by outcome name (metrics.Handshakes)
	Requests      uint64            `json:"requests"`
	Pushes        uint64            `json:"pushes"`
	Delivered     uint64            `json:"delivered"`
	SlowConsumers uint64            `json:"slow_consumers"`
}

// adminStats is the body of GET /admin/stats.
type adminStats struct {
	Time  int64       `json:"time"` // Unix milliseconds on this node
	Nodes []NodeStats `json:"nodes"`
	// Cluster says which nodes the view covers.
	Cluster string `json:"cluster"`
}

// self returns this node's numbers.
func (a *admin) self() NodeStats {
	st := a.gw.Stats()
	hs := map[string]uint64{}
	for _, o := range metrics.Handshakes(&st) {
		hs[o.Name] = o.Count
	}
	return NodeStats{
		Node: a.cfg.Node, Conns: st.Conns, EchoConns: st.EchoConns, Users: st.Users, Topics: st.Topics,
		Handshakes: hs, Requests: st.Requests, Pushes: st.Pushes, Delivered: st.Delivered, SlowConsumers: st.SlowConsumers,
	}
}

func (a *admin) stats(w http.ResponseWriter, r *http.Request) {
	self := a.self()
	self.Self = true
	nodes := []NodeStats{self}
	cluster := "a single node"
	if a.cfg.Peers != nil {
		cluster = "every live node sharing the broker (the others' numbers are at most a second or two old)"
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		infos, err := a.cfg.Peers.NodeInfos(ctx)
		if err != nil {
			cluster = "this node only: the broker did not answer"
		}
		ids := slices.Sorted(maps.Keys(infos))
		for _, id := range ids {
			var n NodeStats
			if json.Unmarshal(infos[id], &n) == nil {
				nodes = append(nodes, n)
			}
		}
	}
	writeJSON(w, http.StatusOK, adminStats{Time: time.Now().UnixMilli(), Nodes: nodes, Cluster: cluster})
}

func (a *admin) user(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st, err := a.gw.UserStatus(ctx, user)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "wsgate: presence unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user": user, "online": st.Conns > 0, "connections": st.Conns, "seq": st.Seq, "acked": st.Acked,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}
