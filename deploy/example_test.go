package deploy

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
)

// TestExampleConfig: deploy/wsgate.toml parses, sets what it says, and
// mentions every setting of serve (as a key or a commented key), so the
// documented example keeps up with the flags.
func TestExampleConfig(t *testing.T) {
	var out bytes.Buffer
	c, err := config.Parse([]string{"--config", "wsgate.toml"}, func(string) string { return "" }, &out)
	if err != nil {
		t.Fatalf("parse wsgate.toml: %v\n%s", err, out.String())
	}
	if c.Server.Addr != ":8080" || c.APIKey != "change-me-too" || len(c.Server.AllowedOrigins) != 1 {
		t.Errorf("wsgate.toml: got addr %q, api key %q, origins %q", c.Server.Addr, c.APIKey, c.Server.AllowedOrigins)
	}
	text, err := os.ReadFile("wsgate.toml")
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	_, err = config.Parse([]string{"--help"}, func(string) string { return "" }, &out)
	if err != flag.ErrHelp {
		t.Fatalf("--help: %v", err)
	}
	n := 0
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "-") || f[0] == "-config" {
			continue
		}
		n++
		key := strings.TrimPrefix(f[0], "-")
		if !strings.Contains(string(text), "\n"+key+" =") && !strings.Contains(string(text), "# "+key+" =") && !strings.Contains(string(text), "# "+key+"  =") {
			t.Errorf("wsgate.toml does not mention %q", key)
		}
	}
	if n < 30 {
		t.Errorf("found %d flags in --help, want all of them", n)
	}
}
