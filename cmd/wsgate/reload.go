package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/api"
	"github.com/wsgate/wsgate/internal/config"
)

// live is the part of a running serve that SIGHUP can change: the log
// level, the TLS certificate, the allowed origins and the API key. Every
// other setting is fixed at start; a reload that changes one logs that it
// waits for a restart.
type live struct {
	level  *slog.LevelVar
	logger *slog.Logger
	cert   *certificate // nil without TLS
	api    apiSwitch
	fr     *firstRun      // first-run secrets, kept across reloads
	start  *config.Config // the settings serve started with
	cfg    *config.Config // the settings of the last reload
	srv    *wsgate.Server // set once built
}

// apiSwitch serves /api/ with the API of the current key; nil while the API
// is off.
type apiSwitch struct {
	h atomic.Pointer[api.API]
}

func (s *apiSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := s.h.Load()
	if a == nil {
		http.Error(w, "wsgate: the HTTP API is off (start serve with --api-key)", http.StatusNotFound)
		return
	}
	a.ServeHTTP(w, r)
}

// setAPI builds the API for cfg's key (nil: API off) and serves it from now on.
func (s *apiSwitch) setAPI(srv *wsgate.Server, cfg *config.Config, logger *slog.Logger) error {
	if cfg.APIKey == "" {
		s.h.Store(nil)
		return nil
	}
	a, err := api.New(srv, api.Config{APIKey: cfg.APIKey, MaxPayload: int(cfg.APIMaxPayload), Logger: logger})
	if err != nil {
		return err
	}
	s.h.Store(a)
	return nil
}

// fillFirstRun gives a first-run configuration the secret and API key this
// process made up, so that a reload sees the same values.
func fillFirstRun(cfg *config.Config, fr *firstRun) {
	if fr == nil || !cfg.FirstRun() {
		return
	}
	cfg.JWTSecret = fr.secret
	if cfg.APIKey == "" {
		cfg.APIKey = fr.apiKey
	}
}

// watch reloads on every SIGHUP until ctx ends; the returned function
// stops watching and waits for a reload in progress.
func (l *live) watch(ctx context.Context) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				l.reload()
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}

// reload reads the settings again (the config file may have changed; the
// command line and environment have not) and applies what it can. A file
// that does not parse changes nothing.
func (l *live) reload() {
	var out strings.Builder
	next, err := l.cfg.Reread(&out)
	if err != nil {
		l.logger.Error("reload failed, settings unchanged", "error", strings.TrimSpace(out.String()))
		return
	}
	fillFirstRun(next, l.fr)
	// Reloadable settings are compared with the last reload, the others
	// with the start: until a restart, every reload names them again.
	var applied, restart []string
	for _, name := range config.Changed(l.cfg, next) {
		if config.Reloadable(name) {
			applied = append(applied, name)
		}
	}
	for _, name := range config.Changed(l.start, next) {
		if !config.Reloadable(name) {
			restart = append(restart, name)
		}
	}
	switch {
	case l.cert != nil && next.TLSCertFile != "":
		if err := l.cert.load(next.TLSCertFile, next.TLSKeyFile); err != nil {
			l.logger.Error("reload: keeping the old certificate", "error", err)
		} else {
			applied = append(applied, "certificate")
		}
	case l.cert != nil || next.TLSCertFile != "":
		restart = append(restart, "TLS on or off")
	}
	if err := l.api.setAPI(l.srv, next, l.logger); err != nil {
		l.logger.Error("reload: keeping the old API key", "error", err)
	}
	l.srv.SetAllowedOrigins(next.Server.AllowedOrigins)
	l.cfg = next
	if len(restart) > 0 {
		l.logger.Warn("reload: these settings changed but apply only after a restart", "settings", restart)
	}
	l.logger.Info("reloaded", "applied", applied)
	l.level.Set(next.LogLevel) // last, so that a new level of warn still shows this reload
}

func newLogger(cfg *config.Config, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
}
