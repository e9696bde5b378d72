package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/auth"
)

// runCmd runs the program with args and no stdin, returning its output.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err = run(ctx, args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestTokenVerifies(t *testing.T) {
	const secret = "0123456789abcdef0123"
	out, errOut, err := runCmd(t, "token", "--secret", secret, "--user", "alice", "--ttl", "1h", "--topics", "news, chat.*")
	if err != nil {
		t.Fatalf("token: %v (stderr %q)", err, errOut)
	}
	v, err := auth.NewVerifier(auth.Config{Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if claims.UserID != "alice" || strings.Join(claims.Topics, "|") != "news|chat.*" {
		t.Errorf("got claims %+v, want user alice, topics news|chat.*", claims)
	}
}

func TestTokenSecretFromEnv(t *testing.T) {
	t.Setenv("WSGATE_JWT_SECRET", "from-the-environment-0123")
	out, _, err := runCmd(t, "token", "--user", "bob")
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	v, _ := auth.NewVerifier(auth.Config{Secret: []byte("from-the-environment-0123")})
	if c, err := v.Verify(strings.TrimSpace(out)); err != nil || c.UserID != "bob" {
		t.Errorf("got %+v, %v; want user bob", c, err)
	}
}

func TestTokenUsageErrors(t *testing.T) {
	t.Setenv("WSGATE_JWT_SECRET", "")
	cases := [][]string{
		{"token", "--user", "a"},
		{"token", "--secret", "0123456789abcdef"},
		{"token", "--secret", "short", "--user", "a"},
		{"token", "--secret", "0123456789abcdef", "--user", "a", "--ttl", "-1s"},
		{"token", "--nope"},
	}
	for _, args := range cases {
		if _, _, err := runCmd(t, args...); err == nil {
			t.Errorf("%q: got nil error, want one", args)
		}
	}
	if _, _, err := runCmd(t, "token", "--help"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("token --help: got %v, want flag.ErrHelp", err)
	}
}

// fakeAPI answers POST /api/v1/push like the gateway and records the body.
func fakeAPI(t *testing.T, key string, delivered int) (*httptest.Server, *pushBody) {
	t.Helper()
	var got pushBody
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/push" {
			http.Error(w, `{"error":"wsgate: not found"}`, http.StatusNotFound)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+key {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"wsgate: bad API key"}`))
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Errorf("decode push body: %v", err)
		}
		_ = json.NewEncoder(w).Encode(map[string]int{"delivered": delivered})
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func TestPushData(t *testing.T) {
	srv, got := fakeAPI(t, "k1", 3)
	out, errOut, err := runCmd(t, "push", "--api", srv.URL, "--api-key", "k1", "--user", "alice", "--action", "120", "--data", "hello")
	if err != nil {
		t.Fatalf("push: %v (stderr %q)", err, errOut)
	}
	if strings.TrimSpace(out) != "delivered 3" {
		t.Errorf("output: got %q, want %q", out, "delivered 3")
	}
	data, _ := base64.StdEncoding.DecodeString(got.Data)
	if got.To.User != "alice" || got.Action != 120 || string(data) != "hello" {
		t.Errorf("body: got %+v (data %q), want user alice, action 120, data hello", *got, data)
	}
}

func TestPushJSONToUsers(t *testing.T) {
	srv, got := fakeAPI(t, "k1", 2)
	t.Setenv("WSGATE_API_KEY", "k1")
	_, errOut, err := runCmd(t, "push", "--api", srv.URL, "--users", "a,b", "--action", "121", "--json", `{"hi":1}`)
	if err != nil {
		t.Fatalf("push: %v (stderr %q)", err, errOut)
	}
	if strings.Join(got.To.Users, ",") != "a,b" || string(got.JSON) != `{"hi":1}` || got.Data != "" {
		t.Errorf("body: got %+v, want users a,b and json {\"hi\":1}", *got)
	}
}

func TestPushErrors(t *testing.T) {
	srv, _ := fakeAPI(t, "k1", 0)
	_, _, err := runCmd(t, "push", "--api", srv.URL, "--api-key", "wrong", "--all", "--action", "120")
	if err == nil || !strings.Contains(err.Error(), "bad API key") {
		t.Errorf("wrong key: got %v, want the server's message", err)
	}
	bad := [][]string{
		{"push", "--api", srv.URL, "--action", "120"},
		{"push", "--api", srv.URL, "--all", "--user", "a", "--action", "120"},
		{"push", "--api", srv.URL, "--all"},
		{"push", "--api", srv.URL, "--all", "--action", "120", "--json", "{nope"},
		{"push", "--api", srv.URL, "--all", "--action", "120", "--json", "1", "--data", "x"},
	}
	for _, args := range bad {
		if _, _, err := runCmd(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("%q: got %v, want a usage error", args, err)
		}
	}
}
