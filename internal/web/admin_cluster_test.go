package web_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	redisbroker "github.com/wsgate/wsgate/broker/redis"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/internal/redistest"
	"github.com/wsgate/wsgate/internal/web"
)

// TestAdminCluster: two nodes on one real Redis; the admin view of either
// shows both, with the other node's connections, and a node that stops
// drops out of the view.
func TestAdminCluster(t *testing.T) {
	leakcheck.Check(t)
	r := redistest.Start(t)
	start := func(name string) *gatewaytest.Gateway {
		b, err := redisbroker.New(redisbroker.Options{URL: r.URL(), FlushInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() }) // after the gateway's own cleanup
		mux := http.NewServeMux()
		return gatewaytest.Start(t, wsgate.Config{Page: mux, HandshakeRate: -1, Broker: b}, func(srv *wsgate.Server) {
			h := web.Admin(srv, web.AdminConfig{APIKey: adminKey, Node: name, Peers: b})
			mux.Handle("/admin", h)
			mux.Handle("/admin/", h)
		})
	}
	a, b := start("node-a"), start("node-b")
	b.DialSimple(t, "bob")
	b.DialSimple(t, "bea")
	view := func() map[string]web.NodeStats {
		_, _, body := adminGet(t, a.URL+"/admin/stats", basic(adminKey))
		var st struct{ Nodes []web.NodeStats }
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("/admin/stats: %v in %s", err, body)
		}
		out := map[string]web.NodeStats{}
		for _, n := range st.Nodes {
			out[n.Node] = n
		}
		return out
	}
	gatewaytest.WaitFor(t, "node-a's view to show node-b's 2 connections", func() bool {
		v := view()
		return len(v) == 2 && v["node-a"].Self && v["node-b"].Conns == 2 && !v["node-b"].Self
	})
	if err := b.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	gatewaytest.WaitFor(t, "node-b to leave the view", func() bool { return len(view()) == 1 })
}
