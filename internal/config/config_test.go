package config

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/websocket"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	c, err := Parse(nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := c.Server.Addr, "127.0.0.1:8080"; got != want {
		t.Errorf("Addr: got %q, want %q", got, want)
	}
	if !c.FirstRun() {
		t.Errorf("FirstRun: got false, want true with no auth settings")
	}
	if !c.Demo {
		t.Errorf("Demo: got false, want true in first-run mode")
	}
	if got, want := c.LogLevel, slog.LevelInfo; got != want {
		t.Errorf("LogLevel: got %v, want %v", got, want)
	}
}

func TestFlagsAndEnv(t *testing.T) {
	e := env(map[string]string{
		"WSGATE_ADDR":             "127.0.0.1:9000",
		"WSGATE_JWT_SECRET":       "0123456789abcdef-from-env",
		"WSGATE_MAX_CONNS":        "50",
		"WSGATE_ALLOWED_ORIGINS":  "https://a.example, https://b.example",
		"WSGATE_MAX_MESSAGE_SIZE": "64KiB",
		"WSGATE_NO_ECHO":          "true",
		"WSGATE_MODE":             "blocking",
		"WSGATE_COMPRESSION":      "true",
		"WSGATE_LOG_LEVEL":        "debug",
	})
	args := []string{"--addr", ":7000", "--send-queue-bytes", "2MiB", "--message-rate", "-1", "--ping-interval", "5s"}
	c, err := Parse(args, e, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	s := c.Server
	checks := []struct {
		name      string
		got, want any
	}{
		{"Addr (flag beats env)", s.Addr, ":7000"},
		{"JWTSecret", c.JWTSecret, "0123456789abcdef-from-env"},
		{"MaxConns", s.MaxConns, 50},
		{"AllowedOrigins", strings.Join(s.AllowedOrigins, "|"), "https://a.example|https://b.example"},
		{"MaxMessageSize", s.MaxMessageSize, int64(64 << 10)},
		{"DisableEcho", s.DisableEcho, true},
		{"Mode", s.Mode, websocket.ModeBlocking},
		{"Compression", s.Compression, true},
		{"LogLevel", c.LogLevel, slog.LevelDebug},
		{"SendQueueBytes", s.SendQueueBytes, 2 << 20},
		{"MessageRate", s.MessageRate, -1.0},
		{"PingInterval", s.PingInterval, 5 * time.Second},
		{"FirstRun", c.FirstRun(), false},
		{"Demo (auth configured)", c.Demo, false},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

// TestDemoDefault: the help says the demo actions are on when no auth is
// configured, and --insecure-no-auth configures none.
func TestDemoDefault(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"--insecure-no-auth"}, true},
		{[]string{"--jwt-secret", "0123456789abcdef0123"}, false},
		{[]string{"--insecure-no-auth", "--demo=false"}, false},
	} {
		c, err := Parse(tc.args, env(nil), &bytes.Buffer{})
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.args, err)
		}
		if c.Demo != tc.want {
			t.Errorf("Parse(%q): Demo = %v, want %v", tc.args, c.Demo, tc.want)
		}
	}
}

func TestDemoExplicit(t *testing.T) {
	c, err := Parse([]string{"--insecure-no-auth", "--demo"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !c.Demo || !c.Server.InsecureNoAuth {
		t.Errorf("got Demo=%v InsecureNoAuth=%v, want both true", c.Demo, c.Server.InsecureNoAuth)
	}
	c, err = Parse([]string{"--demo=false"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Demo {
		t.Errorf("Demo: got true, want false after --demo=false in first-run mode")
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad env value", nil, map[string]string{"WSGATE_MAX_CONNS": "many"}, "$WSGATE_MAX_CONNS"},
		{"bad size", []string{"--max-message-size", "12XB"}, nil, "max-message-size"},
		{"bad mode", []string{"--mode", "fast"}, nil, "want auto, reactor or blocking"},
		{"short secret", []string{"--jwt-secret", "short"}, nil, "at least 16 bytes"},
		{"both keys", []string{"--jwt-secret", "0123456789abcdef", "--jwt-public-key", "k.pem"}, nil, "not both"},
		{"positional", []string{"extra"}, nil, "no arguments"},
		{"log format", []string{"--log-format", "xml"}, nil, "text or json"},
		{"redis URL", []string{"--redis", "localhost:6379"}, nil, "redis:// or rediss://"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Parse(tc.args, env(tc.env), &out)
			if err == nil {
				t.Fatalf("Parse: got nil error, want one mentioning %q", tc.want)
			}
			if !strings.Contains(err.Error()+out.String(), tc.want) {
				t.Errorf("got error %q and output %q, want mention of %q", err, out.String(), tc.want)
			}
		})
	}
}

// TestHelpListsEverySetting keeps --help the reference: each flag appears
// with its environment variable.
func TestHelpListsEverySetting(t *testing.T) {
	var out bytes.Buffer
	_, err := Parse([]string{"--help"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse --help: got %v, want flag.ErrHelp", err)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	(&Config{}).register(fs)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		if !strings.Contains(out.String(), "-"+f.Name) || !strings.Contains(out.String(), "$"+EnvName(f.Name)) {
			t.Errorf("help does not list --%s with $%s", f.Name, EnvName(f.Name))
		}
	})
	if n < 20 {
		t.Errorf("got %d flags, want every setting (at least 20)", n)
	}
}

func TestParseByteSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"65536", 65536, true}, {"64KiB", 64 << 10, true}, {"64K", 64 << 10, true},
		{"16MiB", 16 << 20, true}, {"1GiB", 1 << 30, true}, {"10B", 10, true}, {" 2 MiB", 2 << 20, true},
		{"-1", 0, false}, {"KiB", 0, false}, {"1.5MiB", 0, false}, {"99999999999999GiB", 0, false},
	}
	for _, tc := range cases {
		got, err := parseByteSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseByteSize(%q): got %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestEveryServerSettingHasAFlag sets every flag to a non-default value and
// checks that each plain setting of wsgate.Config changed, so a field added
// to the library without a flag fails here. Hooks, the logger and the page
// are filled in by the binary, not by flags.
func TestEveryServerSettingHasAFlag(t *testing.T) {
	args := []string{
		"--addr", "127.0.0.1:1", "--insecure-no-auth", "--allowed-origins", "https://x.example",
		"--max-conns", "1", "--max-conns-per-user", "1", "--max-message-size", "1", "--echo-max-message-size", "1", "--no-echo",
		"--ping-interval", "1s", "--idle-timeout", "1s", "--send-queue-messages", "1", "--send-queue-bytes", "1",
		"--max-handlers", "1", "--handler-timeout", "1s", "--message-rate", "1", "--handshake-rate", "1",
		"--shutdown-timeout", "1s", "--drain-period", "1s", "--mode", "blocking", "--no-io-uring", "--trusted-proxies", "127.0.0.1,10.0.0.0/8",
		"--history-size", "1", "--history-bytes", "1", "--history-ttl", "1s", "--history-memory", "1",
		"--count-actions", "110,111",
		"--read-header-timeout", "1s", "--read-timeout", "1s", "--http-idle-timeout", "1s", "--max-header-bytes", "1",
		"--max-pending-conns", "1", "--max-pending-conns-per-ip", "1", "--echo-memory", "1",
		"--compression", "--compression-context-takeover",
	}
	c, err := Parse(args, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	v := reflect.ValueOf(c.Server)
	for i := range v.NumField() {
		f := v.Type().Field(i)
		switch f.Type.Kind() {
		case reflect.Func, reflect.Interface, reflect.Pointer:
			continue // hooks, Logger, Page: set by the binary
		}
		if v.Field(i).IsZero() {
			t.Errorf("wsgate.Config.%s has no flag (still zero after setting every flag)", f.Name)
		}
	}
}

func TestTrustedProxiesFlag(t *testing.T) {
	c, err := Parse([]string{"--insecure-no-auth", "--trusted-proxies", "127.0.0.1, 10.1.2.3/8,::1"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got := (*prefixList)(&c.Server.TrustedProxies).String()
	if want := "127.0.0.1/32,10.0.0.0/8,::1/128"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := Parse([]string{"--trusted-proxies", "nginx"}, env(nil), &bytes.Buffer{}); err == nil {
		t.Fatal("--trusted-proxies nginx: got nil error, want one")
	}
}

func TestCountActionsFlag(t *testing.T) {
	c, err := Parse([]string{"--count-actions", "110, 2000"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := (*actionList)(&c.Server.CountActions).String(); got != "110,2000" {
		t.Errorf("got %q, want 110,2000", got)
	}
	for _, bad := range []string{"5", "abc", "4294967296", "2147483648"} {
		if _, err := Parse([]string{"--count-actions", bad}, env(nil), &bytes.Buffer{}); err == nil {
			t.Errorf("--count-actions %s: got no error", bad)
		}
	}
}
