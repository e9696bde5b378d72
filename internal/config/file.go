package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// The config file is TOML: one key per setting, named like its flag
// without the dashes in front, at the top level:
//
//	addr = ":8080"
//	jwt-secret = "…"
//	allowed-origins = ["https://app.example.com"]
//	max-message-size = "64KiB"   # or 65536
//	ping-interval = "30s"
//
// Every flag is a key, so the file cannot fall behind the command line,
// and a key that is not a flag is an error (a typo must not be ignored).
// Values are applied through the flag's own parser, so a size, duration
// or list means the same in the file as on the command line.

// readFile sets the flags of fs from the TOML file at path.
func readFile(fs *flag.FlagSet, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("wsgate: --config: %w", err)
	}
	var m map[string]any
	if _, err := toml.Decode(string(data), &m); err != nil {
		return fmt.Errorf("wsgate: --config %s: %w", path, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // errors in a stable order
	var errs []error
	for _, k := range keys {
		if err := setFromFile(fs, k, m[k]); err != nil {
			errs = append(errs, fmt.Errorf("wsgate: --config %s: %s: %w", path, k, err))
		}
	}
	return errors.Join(errs...)
}

// setFromFile sets the flag called key from a decoded TOML value.
func setFromFile(fs *flag.FlagSet, key string, v any) error {
	if key == configFlag {
		return errors.New("a config file cannot name another config file")
	}
	if fs.Lookup(key) == nil {
		return errors.New("unknown setting (the keys are the flag names of wsgate serve --help)")
	}
	s, err := fileValue(v)
	if err != nil {
		return err
	}
	if err := fs.Set(key, s); err != nil {
		return fmt.Errorf("invalid value %q: %w", s, err)
	}
	return nil
}

// fileValue writes a TOML value the way it would be given as a flag.
func fileValue(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case []any:
		parts := make([]string, len(v))
		for i, item := range v {
			s, ok := item.(string)
			if !ok {
				return "", fmt.Errorf("want a list of strings, got %T in it", item)
			}
			if strings.Contains(s, ",") {
				return "", fmt.Errorf("list item %q contains a comma", s)
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	case map[string]any:
		return "", errors.New("want a value, got a table (settings are top-level keys)")
	case time.Time:
		return "", errors.New("want a value, got a date")
	default:
		return "", fmt.Errorf("unsupported value of type %T", v)
	}
}

// configPath finds --config in args (the command line wins) or
// $WSGATE_CONFIG. It parses args into a throwaway flag set, so that it
// understands them exactly as the real parse will; errors are left for
// that parse to report.
func configPath(args []string, getenv func(string) string) string {
	probe := &Config{}
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(discard{})
	probe.register(fs)
	_ = fs.Parse(args) // reported by the real parse
	if probe.ConfigFile != "" {
		return probe.ConfigFile
	}
	return getenv(EnvName(configFlag))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Reloadable reports whether a running serve applies a change to the
// setting called name on SIGHUP; a change to any other setting waits for a
// restart.
func Reloadable(name string) bool {
	switch name {
	case "allowed-origins", "api-key", "log-level", "tls-cert", "tls-key":
		return true
	}
	return false
}

// Changed returns the names of the settings whose values differ between a
// and b, sorted. It compares what the flags would print, so two values
// that mean the same thing compare equal.
func Changed(a, b *Config) []string {
	va, vb := values(a), values(b)
	var out []string
	for name, v := range va {
		if vb[name] != v {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// values maps every flag name to the value c gives it.
func values(c *Config) map[string]string {
	cp := &Config{}
	fs := flag.NewFlagSet("values", flag.ContinueOnError)
	demo := cp.register(fs) // points the flags at cp's fields (and sets defaults)…
	*cp = *c                // …which now hold c's values
	demo.set, demo.v = true, c.Demo
	out := make(map[string]string)
	fs.VisitAll(func(f *flag.Flag) { out[f.Name] = f.Value.String() })
	return out
}
