package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// The peer scenarios (Peer* functions) run the same load against wsgate and
// against Centrifugo, each over its own real client protocol, so that the
// two servers are compared doing the same work:
//
//   - wsgate: the full binary form (wire.Subprotocol), the JWT in an
//     Authorization header, topics joined with subscribe requests, pushes
//     through POST /api/v1/push.
//   - Centrifugo: its JSON protocol on /connection/websocket (a connect
//     command with the JWT, subscribe commands, publications in push
//     envelopes, pings answered), pushes through POST /api/publish and
//     /api/broadcast with an X-API-Key header. Each user's personal channel
//     is a server-side subscription, "personal:#<user>".
//
// Both get the same HS256 token for a user and the same JSON payload,
// {"r":ROUND,"p":"xxx…"}, so both servers carry the same bytes and the
// client finds the round number in either envelope by the same byte scan.

// Peer names the server of a peer scenario.
type Peer string

const (
	PeerWsgate     Peer = "wsgate"
	PeerCentrifugo Peer = "centrifugo"
)

// PeerConfig is what a peer scenario needs besides Config: Config.URL is
// the WebSocket endpoint (wsgate: ws://host:port/ws; Centrifugo:
// ws://host:port/connection/websocket), Config.API and APIKey the push API.
type PeerConfig struct {
	Peer   Peer
	Secret string // HS256 secret both servers verify tokens with
	// Topics is the number of busy topics "t0"…: connection i also joins
	// "t<i mod Topics>"; 0 = none.
	Topics int
}

// FanoutTopic is the topic every peer connection joins.
const FanoutTopic = "news"

// busyRound marks a push to a busy topic: past maxRounds, so it is counted
// as a message and never as an arrival of a measured round.
const busyRound = maxRounds + 1

// peerUser is the user id of connection i.
func peerUser(i int) string { return "u" + strconv.Itoa(i) }

// peerTopics returns the topics connection i joins.
func (pc PeerConfig) peerTopics(i int) []string {
	if pc.Topics <= 0 {
		return []string{FanoutTopic}
	}
	return []string{FanoutTopic, "t" + strconv.Itoa(i%pc.Topics)}
}

// readyPerConn is how many ready events (hello or connect reply, one reply
// per subscription) a connection sends before it is fully subscribed.
func (pc PeerConfig) readyPerConn() int64 {
	if pc.Topics <= 0 {
		return 2
	}
	return 3
}

// sourceAddr is the loopback address connection i dials from: every
// connection gets its own, so that no source address runs out of ports or
// waits on TIME_WAIT (127.1.0.0 onwards; all of 127/8 is loopback).
func sourceAddr(i int) *net.TCPAddr {
	v := uint32(i) + 1<<16
	return &net.TCPAddr{IP: net.IPv4(127, byte(v>>16), byte(v>>8), byte(v))}
}

// netDialFrom returns a NetDial that dials from sourceAddr(i).
func netDialFrom(i int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: sourceAddr(i)}
	return d.DialContext
}

// peerDial returns the URL and dial options of connection i: its own
// source address, and for wsgate the full form and the token.
func (pc PeerConfig) peerDial(url string, i int, token string) *websocket.DialOptions {
	opts := &websocket.DialOptions{NetDial: netDialFrom(i)}
	if pc.Peer == PeerWsgate {
		opts.Subprotocols = []string{wire.Subprotocol}
		opts.Header = http.Header{"Authorization": {"Bearer " + token}}
	}
	return opts
}

// peerToken issues connection i's token.
func (pc PeerConfig) peerToken(i int) (string, error) {
	return auth.Issue([]byte(pc.Secret), peerUser(i), 2*time.Hour, nil, time.Now())
}

// start sends what a connection sends once open: for Centrifugo the connect
// command and the subscribe commands in one message (the server handles a
// connection's commands in order), for wsgate one subscribe request per
// topic.
func (pc PeerConfig) start(c *websocket.Conn, i int, token string) error {
	topics := pc.peerTopics(i)
	if pc.Peer == PeerCentrifugo {
		var b []byte
		b = fmt.Appendf(b, `{"id":1,"connect":{"token":%q}}`, token)
		for k, t := range topics {
			b = fmt.Appendf(b, "\n{\"id\":%d,\"subscribe\":{\"channel\":%q}}", k+2, t)
		}
		return c.WriteMessage(websocket.TextMessage, b)
	}
	for k, t := range topics {
		f := wire.Frame{Type: wire.TypeRequest, Action: wire.ActionSubscribe, ID: uint32(k + 1), Payload: []byte(t)}
		b, err := wire.AppendFrame(nil, &f)
		if err != nil {
			return err
		}
		if err := c.WriteMessage(websocket.BinaryMessage, b); err != nil {
			return err
		}
	}
	return nil
}

// peerEvents is what a peer message handler reports.
type peerEvents interface {
	ready()          // hello, connect reply or subscribe reply
	arrive(r uint64) // a push of round r
	fail()           // an error reply or an unreadable message
}

// handle reads one message of a peer connection.
func (pc PeerConfig) handle(c *websocket.Conn, typ websocket.MessageType, data []byte, ev peerEvents) {
	if pc.Peer == PeerCentrifugo {
		centrifugoMessage(c, data, ev)
		return
	}
	var f wire.Frame
	if typ != websocket.BinaryMessage || wire.DecodeFrame(data, &f) != nil {
		ev.fail()
		return
	}
	switch f.Type {
	case wire.TypeHello, wire.TypeReply:
		ev.ready()
	case wire.TypePush:
		if r, ok := payloadRound(f.Payload); ok {
			ev.arrive(r)
		} else {
			ev.fail()
		}
	default:
		ev.fail()
	}
}

// centrifugoMessage reads one WebSocket message of Centrifugo's JSON
// protocol: replies and pushes, one JSON object per line. An empty object
// is the server's ping, answered with an empty object.
func centrifugoMessage(c *websocket.Conn, data []byte, ev peerEvents) {
	for len(data) > 0 {
		line, rest, _ := bytes.Cut(data, []byte{'\n'})
		data = rest
		switch {
		case len(line) == 0:
		case bytes.Equal(line, []byte("{}")):
			_ = c.WriteMessage(websocket.TextMessage, []byte("{}")) // a lost connection is counted by OnClose
		case bytes.HasPrefix(line, []byte(`{"push":`)):
			if r, ok := payloadRound(line); ok {
				ev.arrive(r)
			} else {
				ev.fail()
			}
		case bytes.Contains(line, []byte(`"error":`)):
			ev.fail()
		case bytes.HasPrefix(line, []byte(`{"id":`)):
			ev.ready()
		default:
			ev.fail()
		}
	}
}

// peerPayload is the push body of round r: {"r":R,"p":"xxx…"} padded to
// size bytes.
func peerPayload(r uint64, size int) []byte {
	b := strconv.AppendUint([]byte(`{"r":`), r, 10)
	b = append(b, `,"p":"`...)
	for len(b) < size-2 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// payloadRound finds the round number in a push: the digits after the
// first `"r":`.
func payloadRound(b []byte) (uint64, bool) {
	i := bytes.Index(b, []byte(`"r":`))
	if i < 0 {
		return 0, false
	}
	b = b[i+4:]
	var r uint64
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		r = r*10 + uint64(b[n]-'0')
		n++
	}
	return r, n > 0
}

// peerPusher calls a peer's push API.
type peerPusher struct {
	peer   Peer
	api    string
	key    string
	client *http.Client
}

func newPeerPusher(cfg Config, pc PeerConfig, timeout time.Duration) *peerPusher {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	return &peerPusher{peer: pc.Peer, api: cfg.API, key: cfg.APIKey, client: &http.Client{Timeout: timeout, Transport: tr}}
}

func (p *peerPusher) close() { p.client.CloseIdleConnections() }

// topic pushes payload to a topic's subscribers.
func (p *peerPusher) topic(ctx context.Context, topic string, payload []byte) error {
	if p.peer == PeerCentrifugo {
		return p.post(ctx, "/api/publish", map[string]any{"channel": topic, "data": json.RawMessage(payload)})
	}
	return p.post(ctx, "/api/v1/push", map[string]any{"to": map[string]string{"topic": topic}, "action": ActionPush, "json": json.RawMessage(payload)})
}

// users pushes payload to each user: one call to one user, or one call
// naming them all.
func (p *peerPusher) users(ctx context.Context, users []string, payload []byte) error {
	if p.peer == PeerCentrifugo {
		chans := make([]string, len(users))
		for i, u := range users {
			chans[i] = "personal:#" + u // namespace, ":", user boundary "#", user
		}
		if len(chans) == 1 {
			return p.post(ctx, "/api/publish", map[string]any{"channel": chans[0], "data": json.RawMessage(payload)})
		}
		return p.post(ctx, "/api/broadcast", map[string]any{"channels": chans, "data": json.RawMessage(payload)})
	}
	to := map[string]any{"users": users}
	if len(users) == 1 {
		to = map[string]any{"user": users[0]}
	}
	return p.post(ctx, "/api/v1/push", map[string]any{"to": to, "action": ActionPush, "json": json.RawMessage(payload)})
}

func (p *peerPusher) post(ctx context.Context, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("wsgate: bench push: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.api+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("wsgate: bench push: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if p.peer == PeerCentrifugo {
		req.Header.Set("X-API-Key", p.key)
	} else {
		req.Header.Set("Authorization", "Bearer "+p.key)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("wsgate: bench push: %w", err)
	}
	defer func() { _ = resp.Body.Close() }() // read to the end below
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("wsgate: bench push: %w", err)
	}
	// Centrifugo answers 200 with {"error":…} (or, for a broadcast, an
	// error per channel) when a publish fails.
	if resp.StatusCode != http.StatusOK || bytes.Contains(out, []byte(`"error":`)) {
		return fmt.Errorf("wsgate: bench push: %s: %.300s", resp.Status, bytes.TrimSpace(out))
	}
	return nil
}
