package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sample gives every flag a value other than its default, once as a
// command-line argument and once as a TOML literal of the config file.
// A flag missing here fails TestSampleCoversEveryFlag, so a new setting
// cannot skip the file.
var sample = []struct{ flag, arg, toml string }{
	{"addr", "127.0.0.1:1", `"127.0.0.1:1"`},
	{"jwt-secret", "0123456789abcdef-sample", `"0123456789abcdef-sample"`},
	{"jwt-public-key", "key.pem", `"key.pem"`},
	{"jwt-issuer", "iss", `"iss"`},
	{"jwt-audience", "aud", `"aud"`},
	{"insecure-no-auth", "true", `true`},
	{"allowed-origins", "https://a.example,https://b.example", `["https://a.example", "https://b.example"]`},
	{"trusted-proxies", "127.0.0.1,10.0.0.0/8", `["127.0.0.1", "10.0.0.0/8"]`},
	{"api-key", "sample-key", `"sample-key"`},
	{"api-max-payload", "1KiB", `"1KiB"`},
	{"redis", "redis://127.0.0.1:1/0", `"redis://127.0.0.1:1/0"`},
	{"backend", "http://127.0.0.1:1/b", `"http://127.0.0.1:1/b"`},
	{"backend-timeout", "3s", `"3s"`},
	{"backend-concurrency", "3", `3`},
	{"demo", "true", `true`},
	{"max-conns", "7", `7`},
	{"max-conns-per-user", "-1", `-1`},
	{"max-message-size", "2KiB", `2048`},
	{"echo-max-message-size", "1MiB", `"1MiB"`},
	{"no-echo", "true", `true`},
	{"ping-interval", "5s", `"5s"`},
	{"idle-timeout", "1m", `"1m"`},
	{"send-queue-messages", "9", `9`},
	{"send-queue-bytes", "2MiB", `"2MiB"`},
	{"max-handlers", "11", `11`},
	{"handler-timeout", "2s", `"2s"`},
	{"message-rate", "-1", `-1`},
	{"handshake-rate", "2.5", `2.5`},
	{"history-size", "12", `12`},
	{"history-bytes", "4KiB", `"4KiB"`},
	{"history-ttl", "1h", `"1h"`},
	{"history-memory", "1MiB", `"1MiB"`},
	{"mode", "blocking", `"blocking"`},
	{"no-io-uring", "true", `true`},
	{"shutdown-timeout", "4s", `"4s"`},
	{"drain-period", "6s", `"6s"`},
	{"log-level", "debug", `"debug"`},
	{"log-format", "json", `"json"`},
	{"tls-cert", "cert.pem", `"cert.pem"`},
	{"tls-key", "key.pem", `"key.pem"`},
	{"read-header-timeout", "3s", `"3s"`},
	{"read-timeout", "7s", `"7s"`},
	{"http-idle-timeout", "8s", `"8s"`},
	{"max-header-bytes", "4KiB", `"4KiB"`},
	{"max-pending-conns", "13", `13`},
	{"max-pending-conns-per-ip", "5", `5`},
	{"echo-memory", "3MiB", `"3MiB"`},
	{"jwt-leeway", "2s", `"2s"`},
	{"jwt-allow-no-exp", "true", `true`},
	{"count-actions", "110,111", `["110", "111"]`},
	{"metrics-addr", "127.0.0.1:2", `"127.0.0.1:2"`},
	{"compression", "true", `true`},
	{"compression-context-takeover", "true", `true`},
}

// notInFile are the flags a config file cannot set.
var notInFile = map[string]bool{configFlag: true}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wsgate.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSampleCoversEveryFlag(t *testing.T) {
	have := make(map[string]bool)
	for _, s := range sample {
		have[s.flag] = true
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	(&Config{}).register(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !have[f.Name] && !notInFile[f.Name] {
			t.Errorf("--%s has no entry in sample (file_test.go): add one so the config file is tested for it", f.Name)
		}
	})
}

// TestEverySettingInTheFile sets every flag through the file and through
// the command line: both must give the same values, and every field of
// Config (and of wsgate.Config inside it) must have left its zero value, so
// a field without a flag, or a flag the file cannot set, fails here.
func TestEverySettingInTheFile(t *testing.T) {
	var file strings.Builder
	var args []string
	for _, s := range sample {
		file.WriteString(s.flag + " = " + s.toml + "\n")
		args = append(args, "--"+s.flag+"="+s.arg)
	}
	fromFile := &Config{}
	fs := flag.NewFlagSet("file", flag.ContinueOnError)
	demo := fromFile.register(fs)
	if err := readFile(fs, writeFile(t, file.String())); err != nil {
		t.Fatalf("readFile: %v", err)
	}
	fromFile.Demo = demo.value(false)

	fromArgs := &Config{}
	fs2 := flag.NewFlagSet("args", flag.ContinueOnError)
	demo2 := fromArgs.register(fs2)
	if err := fs2.Parse(args); err != nil {
		t.Fatalf("parse args: %v", err)
	}
	fromArgs.Demo = demo2.value(false)

	if diff := Changed(fromFile, fromArgs); len(diff) > 0 {
		vf, va := values(fromFile), values(fromArgs)
		for _, name := range diff {
			t.Errorf("--%s: file gives %q, command line gives %q", name, vf[name], va[name])
		}
	}
	checkNoZeroField(t, reflect.ValueOf(*fromFile), "Config")
}

// checkNoZeroField reports every exported plain field of v still at its
// zero value, descending into wsgate.Config. Hooks, the logger, the page
// and the broker are filled in by the binary, not by settings.
func checkNoZeroField(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() || f.Name == "ConfigFile" { // ConfigFile: the one thing a file cannot set
			continue
		}
		switch f.Type.Kind() {
		case reflect.Func, reflect.Interface, reflect.Pointer:
			continue
		case reflect.Struct:
			checkNoZeroField(t, v.Field(i), path+"."+f.Name)
			continue
		}
		if v.Field(i).IsZero() {
			t.Errorf("%s.%s cannot be set from the config file (still zero after setting every key)", path, f.Name)
		}
	}
}

// TestPrecedence: flag > env > file > default.
func TestPrecedence(t *testing.T) {
	path := writeFile(t, `
# comments are fine
addr = "127.0.0.1:9001"
max-conns = 10
ping-interval = "7s"
api-key = "from-file"
jwt-secret = "0123456789abcdef-from-file"
`)
	e := env(map[string]string{"WSGATE_MAX_CONNS": "20", "WSGATE_API_KEY": "from-env", "WSGATE_PING_INTERVAL": "8s"})
	c, err := Parse([]string{"--config", path, "--api-key", "from-flag"}, e, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"addr (file)", c.Server.Addr, "127.0.0.1:9001"},
		{"jwt-secret (file)", c.JWTSecret, "0123456789abcdef-from-file"},
		{"max-conns (env over file)", c.Server.MaxConns, 20},
		{"ping-interval (env over file)", c.Server.PingInterval.String(), "8s"},
		{"api-key (flag over env and file)", c.APIKey, "from-flag"},
		{"idle-timeout (default)", c.Server.IdleTimeout, c.Server.IdleTimeout * 0},
		{"log-format (default)", c.LogFormat, "text"},
		{"ConfigFile", c.ConfigFile, path},
		{"FirstRun (secret in file)", c.FirstRun(), false},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestConfigFileFromEnv(t *testing.T) {
	envFile := writeFile(t, `addr = "127.0.0.1:9002"`)
	flagFile := writeFile(t, `addr = "127.0.0.1:9003"`)
	c, err := Parse(nil, env(map[string]string{"WSGATE_CONFIG": envFile}), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := c.Server.Addr, "127.0.0.1:9002"; got != want {
		t.Errorf("$WSGATE_CONFIG: addr got %q, want %q", got, want)
	}
	c, err = Parse([]string{"--config=" + flagFile}, env(map[string]string{"WSGATE_CONFIG": envFile}), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := c.Server.Addr, "127.0.0.1:9003"; got != want {
		t.Errorf("--config over $WSGATE_CONFIG: addr got %q, want %q", got, want)
	}
}

func TestConfigFileErrors(t *testing.T) {
	cases := []struct {
		name, file string
		want       []string
	}{
		{"unknown key", `max-con = 5`, []string{"max-con", "unknown setting"}},
		{"bad value", `max-conns = "many"`, []string{"max-conns", "many"}},
		{"bad size", `max-message-size = "12XB"`, []string{"max-message-size", "12XB"}},
		{"table", "[server]\naddr = \":1\"", []string{"server", "table"}},
		{"syntax", `addr = `, []string{"wsgate.toml", "line 1"}},
		{"config in config", `config = "other.toml"`, []string{"another config file"}},
		{"list of numbers", `allowed-origins = [1, 2]`, []string{"allowed-origins", "list of strings"}},
		{"check still runs", `jwt-secret = "short"`, []string{"at least 16 bytes"}},
		{"tls pair", `tls-cert = "c.pem"`, []string{"--tls-cert and --tls-key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Parse([]string{"--config", writeFile(t, tc.file)}, env(nil), &out)
			if err == nil {
				t.Fatalf("Parse: got nil error, want one mentioning %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got error %q, want mention of %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "wsgate: ") || strings.Contains(err.Error(), "wsgate: wsgate:") {
				t.Errorf("got error %q, want one wsgate: prefix", err)
			}
		})
	}
	_, err := Parse([]string{"--config", filepath.Join(t.TempDir(), "missing.toml")}, env(nil), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("missing file: got %v, want an error naming it", err)
	}
}

// TestRereadSeesTheNewFile is what SIGHUP does: parse the same command line
// again with the file as it is now, and name what changed.
func TestRereadSeesTheNewFile(t *testing.T) {
	path := writeFile(t, "api-key = \"one\"\nmax-conns = 5\nlog-level = \"info\"\n")
	old, err := Parse([]string{"--config", path, "--insecure-no-auth"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if err := os.WriteFile(path, []byte("api-key = \"two\"\nmax-conns = 6\nlog-level = \"info\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cur, err := old.Reread(&bytes.Buffer{})
	if err != nil {
		t.Fatalf("Reread: %v", err)
	}
	if cur.APIKey != "two" || !cur.Server.InsecureNoAuth {
		t.Errorf("Reread: got api key %q, insecure-no-auth %v; want \"two\" and the command line kept", cur.APIKey, cur.Server.InsecureNoAuth)
	}
	got := strings.Join(Changed(old, cur), ",")
	if want := "api-key,max-conns"; got != want {
		t.Errorf("Changed: got %q, want %q", got, want)
	}
	if !Reloadable("api-key") || Reloadable("max-conns") {
		t.Errorf("Reloadable: api-key %v, max-conns %v; want true, false", Reloadable("api-key"), Reloadable("max-conns"))
	}
}
