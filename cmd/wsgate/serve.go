package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsgate/wsgate"
	redisbroker "github.com/wsgate/wsgate/broker/redis"
	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/backend"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/web"
	"github.com/wsgate/wsgate/websocket"
)

// demoTokenTTL is how long the token printed in first-run mode is valid.
const demoTokenTTL = 24 * time.Hour

// runServe implements "wsgate serve".
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := config.Parse(args, os.Getenv, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return err
	case err != nil:
		return errUsage // Parse printed the problem
	}
	return serve(ctx, cfg, stdout, stderr)
}

// firstRun is what serve makes up when no authentication is configured: a
// secret for this process only, a token for user "demo" and an API key.
type firstRun struct {
	secret, token, apiKey string
}

func newFirstRun(now time.Time) (*firstRun, error) {
	secret, err := randomHex(32)
	if err != nil {
		return nil, err
	}
	key, err := randomHex(16)
	if err != nil {
		return nil, err
	}
	tok, err := auth.Issue([]byte(secret), "demo", demoTokenTTL, nil, now)
	if err != nil {
		return nil, err
	}
	return &firstRun{secret: secret, token: tok, apiKey: key}, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("wsgate: random secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// serve runs the gateway until ctx ends, then shuts it down gracefully.
func serve(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer) error {
	logger, level := newLogger(cfg, stderr)
	fitConnsToFiles(cfg, logger)
	var fr *firstRun
	if cfg.FirstRun() {
		var err error
		if fr, err = newFirstRun(time.Now()); err != nil {
			return err
		}
		fillFirstRun(cfg, fr)
	}
	lv := &live{level: level, logger: logger, fr: fr, start: cfg, cfg: cfg}
	var err error
	if cfg.Server.TLSConfig, lv.cert, err = newTLS(cfg); err != nil {
		return err
	}
	srv, cleanup, err := newGateway(cfg, logger, lv)
	if err != nil {
		return err
	}
	defer cleanup()
	defer lv.watch(ctx)() // SIGHUP reloads

	ln, err := wsgate.ListenConfig().Listen(ctx, "tcp", cfg.Server.Addr)
	if err != nil {
		return fmt.Errorf("wsgate: listen: %w", err)
	}
	ms, err := startMetrics(ctx, cfg.MetricsAddr, srv, logger)
	if err != nil {
		_ = ln.Close() // never served
		return err
	}
	defer ms.stop()
	// One write: whoever reads the banner (a person, a script, a test)
	// sees it whole once the first line is there.
	var banner bytes.Buffer
	printBanner(&banner, cfg, fr, ln.Addr())
	ms.printBanner(&banner)
	printAdminBanner(&banner, cfg, ln.Addr())
	_, _ = stdout.Write(banner.Bytes()) // a closed stdout does not stop the gateway
	fanoutWrites := "write(2) per connection"
	if websocket.IOURingUsable() && !cfg.Server.DisableIOURing {
		fanoutWrites = "io_uring batches"
	}
	logger.Info("serving", "addr", ln.Addr().String(), "fanout_writes", fanoutWrites)
	if err := srv.Serve(ctx, ln); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

// newGateway builds the server with authentication, the page, the API, the
// backend forwarder and the demo handlers as configured. cleanup releases
// what outlives the server (the forwarder's calls in flight).
func newGateway(cfg *config.Config, logger *slog.Logger, lv *live) (*wsgate.Server, func(), error) {
	sc := cfg.Server
	sc.Logger = logger
	if !sc.InsecureNoAuth {
		authn, err := authenticator(cfg)
		if err != nil {
			return nil, nil, err
		}
		sc.Authenticate = authn
	}
	cleanup := func() {}
	var peers web.Peers // the other nodes, for the admin view
	if cfg.Backend != "" {
		fw, err := backend.New(backend.Config{URL: cfg.Backend, Timeout: cfg.BackendTimeout, MaxConcurrent: cfg.BackendConcurrency, Logger: logger})
		if err != nil {
			return nil, nil, err
		}
		sc.Fallback, sc.OnConnect, sc.OnDisconnect = fw.Handle, fw.OnConnect, fw.OnDisconnect
		cleanup = fw.Close
	}
	if cfg.Redis != "" {
		b, err := newRedisBroker(cfg, logger)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		sc.Broker, peers = b, b
		cleanup = chain(cleanup, func() { _ = b.Close() }) // at exit; nothing to do about a failure
	}
	page := http.NewServeMux()
	page.Handle("/", web.Handler())
	sc.Page = apiFirst{api: &lv.api, page: page}
	srv, err := wsgate.New(sc)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	lv.srv = srv
	if err := lv.api.setAPI(srv, cfg, logger); err != nil {
		cleanup()
		return nil, nil, err
	}
	page.Handle("/api/", &lv.api)
	if cfg.APIKey != "" {
		mountAdmin(page, srv, cfg, peers) // with the key of the start: a reload of --api-key needs a restart for /admin
	}
	if cfg.Demo {
		if err := new(demo).register(srv); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	return srv, cleanup, nil
}

// apiFirst is the gateway's Config.Page: requests under /api/ go straight
// to the API, everything else to page (which routes /api/ to the API as
// well, so that its redirect of "/api" stays). A push comes by the
// thousand, and the page mux's lookup was one of the costs each paid. The
// gateway's own mux has cleaned the path before a request gets here, and
// a path without escapes (RawPath empty) starts with "/api/" exactly when
// the escaped path the page mux matches does.
type apiFirst struct {
	api  *apiSwitch
	page *http.ServeMux
}

func (h apiFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawPath == "" && strings.HasPrefix(r.URL.Path, "/api/") {
		h.api.ServeHTTP(w, r)
		return
	}
	h.page.ServeHTTP(w, r)
}

// authenticator verifies the JWT of every /ws handshake.
func authenticator(cfg *config.Config) (func(context.Context, *http.Request) (wsgate.Identity, error), error) {
	ac := auth.Config{
		Secret: []byte(cfg.JWTSecret), Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience,
		Leeway: cfg.JWTLeeway, AllowNoExpiry: cfg.JWTAllowNoExpiry,
	}
	if cfg.JWTPublicKeyFile != "" {
		pem, err := os.ReadFile(cfg.JWTPublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("wsgate: --jwt-public-key: %w", err)
		}
		ac.PublicKeyPEM = pem
	}
	v, err := auth.NewVerifier(ac)
	if err != nil {
		return nil, err
	}
	return v.Authenticate, nil
}

// printBanner tells the person who started serve where everything is; in
// first-run mode it also prints the demo token and API key.
func printBanner(w io.Writer, cfg *config.Config, fr *firstRun, addr net.Addr) {
	base, ws := "http://"+displayAddr(addr), "ws://"+displayAddr(addr)
	if cfg.TLSCertFile != "" {
		base, ws = "https://"+displayAddr(addr), "wss://"+displayAddr(addr)
	}
	page := base + "/"
	if fr != nil {
		page += "?token=" + fr.token
	}
	fmt.Fprintf(w, "wsgate listening on %s\n", base)
	fmt.Fprintf(w, "  test page:  %s\n", page)
	fmt.Fprintf(w, "  WebSocket:  %s/ws", ws)
	if !cfg.Server.DisableEcho {
		fmt.Fprintf(w, "   echo: %s/echo", ws)
	}
	fmt.Fprintln(w)
	if cfg.Demo {
		fmt.Fprintln(w, "  demo actions: 100 echo, 110 add friend (payload: a user id), 111 get info")
	}
	if cfg.Server.InsecureNoAuth {
		fmt.Fprintln(w, "  auth: OFF (--insecure-no-auth): anyone who can reach the port may connect")
	}
	if fr == nil {
		return
	}
	fmt.Fprintf(w, "  demo token (user \"demo\", valid %.0f hours): %s\n", demoTokenTTL.Hours(), fr.token)
	fmt.Fprintf(w, "  API key: %s\n", cfg.APIKey)
	fmt.Fprintln(w, "  for the README's examples, paste into your shell:")
	fmt.Fprintf(w, "    export TOKEN=%s KEY=%s WSGATE_JWT_SECRET=%s WSGATE_API=%s\n", fr.token, cfg.APIKey, fr.secret, base)
	fmt.Fprintf(w, "  try:  echo bob | wsgate client --token \"$TOKEN\" --action 110 %s/ws\n", ws)
	fmt.Fprintln(w, "        wsgate push --api-key \"$KEY\" --user demo --action 120 --data hello")
	fmt.Fprintln(w, "        wsgate token --secret \"$WSGATE_JWT_SECRET\" --user alice")
	fmt.Fprintln(w, "  first-run mode: the secret and key above are random and last until exit;")
	fmt.Fprintln(w, "  set --jwt-secret and --api-key (or WSGATE_JWT_SECRET, WSGATE_API_KEY) to keep them.")
}

// displayAddr turns a listener address into one a browser can open: an
// unspecified IP (":8080", "0.0.0.0") becomes localhost.
func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("localhost", fmt.Sprint(tcp.Port))
}

// newRedisBroker builds the shared broker of --redis with the history
// settings of the command line. go-redis's own log lines (every failed
// dial while Redis is down) go to the debug level: the broker logs each
// loss and recovery once.
func newRedisBroker(cfg *config.Config, logger *slog.Logger) (*redisbroker.Broker, error) {
	redis.SetLogger(redisLog{logger})
	return redisbroker.New(redisbroker.Options{
		URL:          cfg.Redis,
		HistorySize:  cfg.Server.HistorySize,
		HistoryBytes: cfg.Server.HistoryBytes,
		HistoryTTL:   cfg.Server.HistoryTTL,
		Logger:       logger,
	})
}

// redisLog hands go-redis's internal messages to slog.
type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// chain runs a, then b.
func chain(a, b func()) func() {
	return func() {
		a()
		b()
	}
}
