package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// actionError is the reply action for a request the server could not
	// parse; its payload is a UTF-8 message.
	actionError uint32 = 0x80000000
	// maxPushBody bounds a push request: 16 MiB of data in base64 plus JSON.
	maxPushBody = 24 << 20
)

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /echo", a.serveEcho)
	mux.HandleFunc("GET /ws", a.serveActions)
	mux.HandleFunc("POST /api/v1/push", a.servePush)
	mux.HandleFunc("GET /stats", a.serveStats)
	return mux
}

func (a *app) serveEcho(w http.ResponseWriter, r *http.Request) {
	a.serveWS(w, r, "", false, echoMessage)
}

func (a *app) serveActions(w http.ResponseWriter, r *http.Request) {
	a.serveWS(w, r, r.URL.Query().Get("user"), true, actionMessage)
}

// serveWS upgrades, registers the client with the hub and starts its two
// pumps, then returns so net/http frees the request, as in the tutorials.
func (a *app) serveWS(w http.ResponseWriter, r *http.Request, user string, pushable bool, handle handleFunc) {
	conn, err := a.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has already written the HTTP error
	}
	c := newClient(conn, a.cfg.sendQueue, user, pushable)
	if !a.hub.join(c) {
		closeNow(conn, websocket.CloseGoingAway, "server shutting down")
		return
	}
	if !a.track(2) {
		a.hub.leave(c)
		closeNow(conn, websocket.CloseGoingAway, "server shutting down")
		return
	}
	go func() {
		defer a.workers.Done()
		c.writePump(a.cfg)
	}()
	go func() {
		defer a.workers.Done()
		c.readPump(a.hub, a.cfg, handle)
	}()
}

// closeNow refuses a connection that was upgraded during shutdown.
func closeNow(conn *websocket.Conn, code int, text string) {
	// Best effort on a connection nobody will read from again.
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(closeWait))
	_ = conn.Close()
}

// echoMessage sends the message back with its own opcode.
func echoMessage(c *client, typ int, data []byte) bool {
	return c.reply(typ, data)
}

// actionMessage answers the action protocol: the only action is echo, so the
// reply is the request itself.
func actionMessage(c *client, typ int, data []byte) bool {
	switch {
	case typ != websocket.BinaryMessage:
		return c.reply(websocket.BinaryMessage, errorReply("wsgate: expected a binary message"))
	case len(data) < 4:
		return c.reply(websocket.BinaryMessage, errorReply("wsgate: message shorter than 4 bytes"))
	}
	return c.reply(websocket.BinaryMessage, data)
}

func errorReply(text string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, actionError), text...)
}

// pushRequest is the body of POST /api/v1/push. Data is base64 in JSON.
type pushRequest struct {
	To struct {
		All  bool   `json:"all"`
		User string `json:"user"`
	} `json:"to"`
	Action uint32 `json:"action"`
	Data   []byte `json:"data"`
}

func (a *app) servePush(w http.ResponseWriter, r *http.Request) {
	req, err := decodePush(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	p := &push{
		msg:  append(binary.BigEndian.AppendUint32(nil, req.Action), req.Data...),
		all:  req.To.All,
		user: req.To.User,
	}
	n, err := a.hub.publish(r.Context(), p)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	writeJSON(w, map[string]int{"delivered": n})
}

func decodePush(w http.ResponseWriter, r *http.Request) (pushRequest, error) {
	var req pushRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPushBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("baseline: push body: %w", err)
	}
	if req.To.All == (req.To.User != "") {
		return req, errors.New("baseline: push needs exactly one of to.all and to.user")
	}
	return req, nil
}

// stats is the body of GET /stats; the benchmark driver subtracts a sample
// taken before any connection from one taken with all of them open.
type stats struct {
	Conns      int64  `json:"conns"`
	Goroutines int    `json:"goroutines"`
	HeapInuse  uint64 `json:"heap_inuse"`
}

func (a *app) serveStats(w http.ResponseWriter, r *http.Request) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	writeJSON(w, stats{
		Conns:      a.hub.conns.Load(),
		Goroutines: runtime.NumGoroutine(),
		HeapInuse:  ms.HeapInuse,
	})
}

// writeError answers {"error": "..."} like wsgate's HTTP API.
func writeError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// A failed write means the client went away; there is nobody to tell.
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	// A failed write means the client went away; there is nobody to tell.
	_ = json.NewEncoder(w).Encode(v)
}
