package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/config"
)

// pushTarget is the "to" object of POST /api/v1/push; exactly one field is set.
type pushTarget struct {
	User  string   `json:"user,omitempty"`
	Users []string `json:"users,omitempty"`
	Topic string   `json:"topic,omitempty"`
	Conn  string   `json:"conn,omitempty"`
	All   bool     `json:"all,omitempty"`
}

// pushBody is the request body of POST /api/v1/push (docs/API.md).
type pushBody struct {
	To     pushTarget      `json:"to"`
	Action uint32          `json:"action"`
	Data   string          `json:"data,omitempty"`
	JSON   json.RawMessage `json:"json,omitempty"`
}

// pushFlags are the settings of "wsgate push".
type pushFlags struct {
	api, apiKey string
	target      pushTarget
	users       string
	action      uint
	data, jsonV string
	timeout     time.Duration
}

func (p *pushFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.api, "api", envOr("WSGATE_API", "http://127.0.0.1:8080"), "gateway base `URL` [$WSGATE_API]")
	fs.StringVar(&p.apiKey, "api-key", "", "API `key` (default $WSGATE_API_KEY)")
	fs.StringVar(&p.target.User, "user", "", "push to every connection of this user")
	fs.StringVar(&p.users, "users", "", "push to these comma-separated users")
	fs.StringVar(&p.target.Topic, "topic", "", "push to the subscribers of this topic")
	fs.StringVar(&p.target.Conn, "conn", "", "push to this connection id")
	fs.BoolVar(&p.target.All, "all", false, "push to every connection")
	fs.UintVar(&p.action, "action", 0, "action code (100 or more); required")
	fs.StringVar(&p.data, "data", "", "payload as text (sent base64-encoded)")
	fs.StringVar(&p.jsonV, "json", "", "payload as a JSON value (instead of --data)")
	fs.DurationVar(&p.timeout, "timeout", 10*time.Second, "HTTP request timeout")
}

// body validates the flags and builds the request body.
func (p *pushFlags) body() (pushBody, error) {
	p.target.Users = config.SplitList(p.users)
	n := 0
	for _, set := range []bool{p.target.User != "", len(p.target.Users) > 0, p.target.Topic != "", p.target.Conn != "", p.target.All} {
		if set {
			n++
		}
	}
	if n != 1 {
		return pushBody{}, errors.New("wsgate push: give exactly one of --user, --users, --topic, --conn, --all")
	}
	if p.action == 0 || p.action > 1<<31-1 {
		return pushBody{}, errors.New("wsgate push: --action is required (100 … 2147483647)")
	}
	if p.data != "" && p.jsonV != "" {
		return pushBody{}, errors.New("wsgate push: give --data or --json, not both")
	}
	b := pushBody{To: p.target, Action: uint32(p.action)}
	if p.jsonV != "" {
		if !json.Valid([]byte(p.jsonV)) {
			return pushBody{}, fmt.Errorf("wsgate push: --json is not valid JSON: %q", p.jsonV)
		}
		b.JSON = json.RawMessage(p.jsonV)
	} else {
		b.Data = base64.StdEncoding.EncodeToString([]byte(p.data))
	}
	return b, nil
}

// runPush implements "wsgate push".
func runPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("wsgate push", "Usage: wsgate push --api-key KEY (--user U | --users a,b | --topic T | --conn ID | --all) --action N [--data TEXT | --json VALUE]\n\nPushes one message through the gateway's HTTP API (POST /api/v1/push) and prints how many\nconnections had it queued (\"delivered N\"; \"?\" with a shared broker, whose nodes deliver after\nthe call) and, for --user, the sequence number it got (\"seq S\").\n\nExit status: 0 delivered (or unknown); 4 no connection had it queued (delivered 0, or --conn not\nconnected); 3 API key refused; 1 any other failure; 2 bad command line.\n\n", stderr)
	var p pushFlags
	p.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if p.apiKey == "" {
		p.apiKey = os.Getenv("WSGATE_API_KEY")
	}
	body, err := p.body()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	res, err := postPush(ctx, p.api, p.apiKey, body)
	if err != nil {
		return err
	}
	return res.print(stdout)
}

// pushResult is the API's answer to a push.
type pushResult struct {
	Delivered *int    `json:"delivered"` // absent with a shared broker: nodes deliver after the call
	Seq       *uint64 `json:"seq"`       // present for a push to one user
	Error     string  `json:"error"`
}

// print writes "delivered N" (or "delivered ?" when the API cannot know)
// and the user's sequence number, and fails with exitNotDelivered when
// the API says that no connection had the message queued.
func (r *pushResult) print(w io.Writer) error {
	line := "delivered ?"
	if r.Delivered != nil {
		line = fmt.Sprintf("delivered %d", *r.Delivered)
	}
	if r.Seq != nil {
		line += fmt.Sprintf(" seq %d", *r.Seq)
	}
	if _, err := fmt.Fprintln(w, line); err != nil {
		return err
	}
	if r.Delivered != nil && *r.Delivered == 0 {
		msg := "wsgate: push: no connection had the message queued"
		if r.Seq != nil {
			msg += fmt.Sprintf(" (kept as seq %d for the user's clients that resume)", *r.Seq)
		}
		return withExit(exitNotDelivered, errors.New(msg))
	}
	return nil
}

// postPush sends body to the API at base and returns its answer.
func postPush(ctx context.Context, base, key string, body pushBody) (*pushResult, error) {
	js, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("wsgate: encode push: %w", err)
	}
	url := strings.TrimSuffix(base, "/") + "/api/v1/push"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(js))
	if err != nil {
		return nil, fmt.Errorf("wsgate: push: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("wsgate: push: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("wsgate: push: read answer: %w", err)
	}
	var out pushResult
	jerr := json.Unmarshal(raw, &out)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, withExit(exitAuth, pushError(resp.Status, out.Error, raw))
	case resp.StatusCode == http.StatusNotFound && jerr == nil && out.Error != "" && strings.Contains(out.Error, "not connected"):
		return nil, withExit(exitNotDelivered, pushError(resp.Status, out.Error, raw))
	case jerr != nil || resp.StatusCode != http.StatusOK:
		return nil, pushError(resp.Status, out.Error, raw)
	}
	return &out, nil
}

// pushError describes a failed push with the server's own message when it
// sent one, without repeating its "wsgate: " prefix.
func pushError(status, msg string, raw []byte) error {
	if msg == "" {
		msg = strings.TrimSpace(string(raw))
	}
	msg = strings.TrimPrefix(msg, "wsgate: ")
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return fmt.Errorf("wsgate: push: HTTP %s: %s", status, msg)
}

// envOr returns the environment variable key, or def when it is empty.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
