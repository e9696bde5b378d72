package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/websocket"
)

// TestSIGHUPReload rewrites the config file of a running serve and sends
// SIGHUP: the API key, allowed origins and log level change at once, a
// setting that needs a restart is named in a warning and left alone, and a
// file that does not parse changes nothing.
func TestSIGHUPReload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	file := filepath.Join(t.TempDir(), "wsgate.toml")
	const secret = "reload-test-secret-0123456789"
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(file, []byte("jwt-secret = \""+secret+"\"\n"+text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("api-key = \"key-one\"\nlog-level = \"info\"\nmax-conns = 5\n")
	p := startServeProc(t, "--config", file)
	base := "http://" + p.addr
	tok, err := auth.Issue([]byte(secret), "reloader", time.Hour, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	apiStatus := func(key string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/stats", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET /api/v1/stats: %v", err)
		}
		_ = resp.Body.Close() // status only
		return resp.StatusCode
	}
	originStatus := func() int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, "ws://"+p.addr+"/ws", nil, &websocket.DialOptions{Header: http.Header{
			"Origin":        {"https://app.example"},
			"Authorization": {"Bearer " + tok},
		}})
		if err == nil {
			_ = c.CloseNow() // only the handshake mattered
			<-c.Done()
			return http.StatusSwitchingProtocols
		}
		if resp == nil {
			t.Fatalf("dial /ws: %v", err)
		}
		return resp.StatusCode
	}

	if got := apiStatus("key-one"); got != http.StatusOK {
		t.Fatalf("API with key-one: got %d, want 200", got)
	}
	if got := originStatus(); got != http.StatusForbidden {
		t.Fatalf("origin before reload: got %d, want 403", got)
	}

	write("api-key = \"key-two\"\nlog-level = \"debug\"\nmax-conns = 6\nallowed-origins = [\"https://app.example\"]\n")
	p.hup(t, "")
	out := p.out.String()
	for _, want := range []string{"applied=\"[allowed-origins api-key log-level]\"", "apply only after a restart", "settings=[max-conns]"} {
		if !strings.Contains(out, want) {
			t.Errorf("reload log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "key-two") {
		t.Error("the reload log shows the new API key")
	}
	if got := apiStatus("key-two"); got != http.StatusOK {
		t.Errorf("API with the new key: got %d, want 200", got)
	}
	if got := apiStatus("key-one"); got != http.StatusUnauthorized {
		t.Errorf("API with the old key: got %d, want 401", got)
	}
	if got := originStatus(); got != http.StatusSwitchingProtocols {
		t.Errorf("origin after reload: got %d, want 101", got)
	}

	// log-level warn: this reload still reports itself (the level changes
	// last); the next one logs only its warning, since max-conns still
	// differs from what serve started with.
	write("api-key = \"key-two\"\nlog-level = \"warn\"\nmax-conns = 6\nallowed-origins = [\"https://app.example\"]\n")
	p.hup(t, "")
	n := strings.Count(p.out.String(), "msg=reloaded")
	p.hup(t, "apply only after a restart")
	if got := strings.Count(p.out.String(), "msg=reloaded"); got != n {
		t.Errorf("at log level warn: %d info lines \"reloaded\", want still %d", got, n)
	}

	write("api-key = \n")
	p.hup(t, "reload failed, settings unchanged")
	if got := apiStatus("key-two"); got != http.StatusOK {
		t.Errorf("API after a broken file: got %d, want 200 with key-two", got)
	}
}
