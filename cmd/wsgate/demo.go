package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/wire"
)

// Demo actions registered by "wsgate serve --demo". Their payloads are
// documented in the README and in serve's help.
const (
	// actionDemoEcho replies with the request payload unchanged.
	actionDemoEcho wire.Action = 100
	// actionAddFriend adds a friend to the caller's list.
	// Request payload: the friend's user id, 1–64 bytes of UTF-8.
	// Reply payload: JSON {"user":"demo","added":"bob","friends":["bob"]}.
	// Errors: CodeBadRequest for an empty, too long or non-UTF-8 id;
	// CodeLimitExceeded beyond 100 friends.
	actionAddFriend wire.Action = 110
	// actionGetInfo describes the caller's connection.
	// Request payload: ignored.
	// Reply payload: JSON {"conn":"…","user":"demo","protocol":"wsgate.v1",
	// "remote":"127.0.0.1:5555","friends":["bob"],"time":"2006-01-02T15:04:05Z"}.
	actionGetInfo wire.Action = 111
)

// Bounds of the demo's in-memory friend lists: the demo must not be a way
// to grow the server's memory without limit.
const (
	maxFriendID  = 64
	maxFriends   = 100
	maxDemoUsers = 10000
)

// demo holds the friend lists of the demo handlers, per user id
// (anonymous users share the "" list).
type demo struct {
	mu      sync.Mutex
	friends map[string][]string
}

// register adds the demo handlers to srv.
func (d *demo) register(srv *wsgate.Server) error {
	d.friends = make(map[string][]string)
	for a, h := range map[wire.Action]wsgate.HandlerFunc{
		actionDemoEcho:  d.echo,
		actionAddFriend: d.addFriend,
		actionGetInfo:   d.info,
	} {
		if err := srv.Handle(a, h); err != nil {
			return fmt.Errorf("wsgate: register demo action %d: %w", a, err)
		}
	}
	return nil
}

// echo replies with the payload itself: the handler owns it, and the reply
// is copied into its frame.
func (d *demo) echo(_ context.Context, req *wsgate.Request) ([]byte, error) {
	return req.Payload, nil
}

func (d *demo) addFriend(_ context.Context, req *wsgate.Request) ([]byte, error) {
	friend := string(req.Payload)
	if friend == "" || len(friend) > maxFriendID || !utf8.ValidString(friend) {
		return nil, &wire.Error{Code: wire.CodeBadRequest, Message: fmt.Sprintf("payload must be the friend's user id: 1–%d bytes of UTF-8", maxFriendID)}
	}
	user := req.Conn.UserID
	list, err := d.add(user, friend)
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		User    string   `json:"user"`
		Added   string   `json:"added"`
		Friends []string `json:"friends"`
	}{user, friend, list})
}

// add puts friend on user's list and returns a copy of the list.
func (d *demo) add(user, friend string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	list, known := d.friends[user]
	switch {
	case slices.Contains(list, friend):
		return slices.Clone(list), nil
	case !known && len(d.friends) >= maxDemoUsers:
		return nil, &wire.Error{Code: wire.CodeLimitExceeded, Message: fmt.Sprintf("the demo keeps friend lists for at most %d users", maxDemoUsers)}
	case len(list) >= maxFriends:
		return nil, &wire.Error{Code: wire.CodeLimitExceeded, Message: fmt.Sprintf("at most %d friends in the demo", maxFriends)}
	}
	d.friends[user] = append(list, friend)
	return slices.Clone(d.friends[user]), nil
}

func (d *demo) info(_ context.Context, req *wsgate.Request) ([]byte, error) {
	d.mu.Lock()
	friends := append([]string{}, d.friends[req.Conn.UserID]...)
	d.mu.Unlock()
	return json.Marshal(struct {
		Conn     string   `json:"conn"`
		User     string   `json:"user"`
		Protocol string   `json:"protocol"`
		Remote   string   `json:"remote"`
		Friends  []string `json:"friends"`
		Time     string   `json:"time"`
	}{req.Conn.ID, req.Conn.UserID, req.Conn.Protocol, remote(req.Conn.RemoteAddr), friends, time.Now().UTC().Format(time.RFC3339)})
}

// remote formats a client address, "" when unknown.
func remote(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
