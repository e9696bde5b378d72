// Package config maps the command line and WSGATE_* environment variables of
// "wsgate serve" onto wsgate.Config and the binary's own settings.
//
// Every setting is a flag; each flag --some-name can also be given as the
// environment variable WSGATE_SOME_NAME and as the key some-name in the TOML
// file named by --config (file.go). A flag on the command line wins over the
// environment, which wins over the file, which wins over the default.
// "wsgate serve --help" lists every setting with its variable, so the help
// text is the reference.
//
// The library (package wsgate) never reads flags or the environment; this
// package is the only place that does, and it only reads what it is given
// (args and a getenv function), so tests need no process state.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/wsgate/wsgate"
)

// EnvPrefix starts the environment variable of every flag.
const EnvPrefix = "WSGATE_"

// Config is everything "wsgate serve" is configured with.
type Config struct {
	// Server is handed to wsgate.New. The binary fills its hooks
	// (Authenticate, Logger, Fallback) from the fields below.
	Server wsgate.Config

	// JWTSecret verifies HS256 tokens. JWTPublicKeyFile names a PEM public key
	// for RS256/ES256 tokens instead. With neither (and without
	// InsecureNoAuth) serve runs in first-run mode: it makes a random secret
	// and prints a demo token.
	JWTSecret        string
	JWTPublicKeyFile string
	JWTIssuer        string        // required iss claim, "" = any
	JWTAudience      string        // required aud claim, "" = any
	JWTLeeway        time.Duration // clock skew allowed on exp/nbf; default 30 s
	JWTAllowNoExpiry bool          // accept tokens without exp; default false

	// APIKey protects the HTTP push API under /api/v1/; "" disables the API
	// (except in first-run mode, which makes a random key and prints it).
	APIKey string
	// APIMaxPayload bounds the payload of one push through the API; 0 = the
	// API's default (64 KiB).
	APIMaxPayload int64
	// Redis is the redis:// URL of the broker that several gateway nodes
	// share (pushes, sequences, history, acks, presence); "" = this node
	// alone, in memory.
	Redis string
	// Backend is the URL actions without a built-in handler are forwarded to; "" = none.
	Backend string
	// BackendTimeout bounds one backend call; 0 = the forwarder's default (5 s).
	BackendTimeout time.Duration
	// BackendConcurrency bounds backend calls in flight; 0 = default (64).
	BackendConcurrency int
	// Demo registers the demo handlers (actions 100, 110, 111). Default: on
	// when no token verification is configured (first-run mode and
	// --insecure-no-auth), off otherwise.
	Demo bool

	LogLevel  slog.Level // default info
	LogFormat string     // "text" (default) or "json"

	// MetricsAddr is the address of the Prometheus endpoint (GET /metrics),
	// a listener of its own; "" (the default) serves none.
	MetricsAddr string
	// ConfigFile is the TOML file the settings were read from; "" = none.
	ConfigFile string
	// TLSCertFile and TLSKeyFile are the PEM certificate chain and key the
	// gateway serves HTTPS and wss:// with; both or neither. They are read
	// again on SIGHUP, so a renewed certificate needs no restart.
	TLSCertFile string
	TLSKeyFile  string

	// args and getenv are what Parse read, kept for Reread.
	args   []string
	getenv func(string) string
}

// configFlag is the flag naming the config file.
const configFlag = "config"

// FirstRun reports whether no authentication was configured at all, the case
// in which serve makes its own secret and prints a demo token.
func (c *Config) FirstRun() bool {
	return c.JWTSecret == "" && c.JWTPublicKeyFile == "" && !c.Server.InsecureNoAuth
}

// Parse reads args (the arguments after "serve") and the WSGATE_* variables
// through getenv. Help and errors are written to output. It returns
// flag.ErrHelp when help was asked for.
func Parse(args []string, getenv func(string) string, output io.Writer) (*Config, error) {
	c := &Config{}
	fs := flag.NewFlagSet("wsgate serve", flag.ContinueOnError)
	fs.SetOutput(output)
	demo := c.register(fs)
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " [$" + EnvName(f.Name) + "]" })
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: wsgate serve [flags]\n\nRuns the gateway. Every flag can also be set by the environment variable shown after it,\nor as a key of the same name in the TOML file of --config (deploy/wsgate.toml is an example).\nA flag on the command line wins over the environment, which wins over the file.\n\n")
		fs.PrintDefaults()
	}
	if path := configPath(args, getenv); path != "" {
		if err := readFile(fs, path); err != nil {
			fmt.Fprintln(output, err)
			return nil, err
		}
	}
	if err := applyEnv(fs, getenv); err != nil {
		fmt.Fprintln(output, err)
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("wsgate: serve takes no arguments, got %q", fs.Args())
		fmt.Fprintln(output, err)
		return nil, err
	}
	c.Demo = demo.value(c.JWTSecret == "" && c.JWTPublicKeyFile == "")
	if err := c.check(); err != nil {
		fmt.Fprintln(output, err)
		return nil, err
	}
	c.args, c.getenv = args, getenv
	return c, nil
}

// Reread parses the same command line and environment again, with the
// config file as it is now: what a running serve does on SIGHUP.
func (c *Config) Reread(output io.Writer) (*Config, error) {
	return Parse(c.args, c.getenv, output)
}

// EnvName is the environment variable of the flag called name.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// applyEnv sets every flag whose variable is non-empty. It runs before
// fs.Parse so that the command line overrides the environment.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		v := getenv(EnvName(f.Name))
		if v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("wsgate: $%s: %w", EnvName(f.Name), err))
		}
	})
	return errors.Join(errs...)
}

// check rejects combinations that cannot work.
func (c *Config) check() error {
	if c.JWTSecret != "" && c.JWTPublicKeyFile != "" {
		return errors.New("wsgate: set --jwt-secret or --jwt-public-key, not both")
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 16 {
		return fmt.Errorf("wsgate: --jwt-secret must be at least 16 bytes, got %d", len(c.JWTSecret))
	}
	if c.Redis != "" && !strings.HasPrefix(c.Redis, "redis://") && !strings.HasPrefix(c.Redis, "rediss://") {
		return fmt.Errorf("wsgate: --redis must be a redis:// or rediss:// URL, got %q", c.Redis)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("wsgate: set both --tls-cert and --tls-key, or neither")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("wsgate: --log-format must be text or json, got %q", c.LogFormat)
	}
	return nil
}
