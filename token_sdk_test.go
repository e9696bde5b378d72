package wsgate_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/client"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/wire"
)

// tokenPlan is a GetToken that hands out tokens of user "gus" with the
// given TTLs in turn (the last repeating; 0 fails; a negative TTL always
// gives the same expired token) and counts its calls.
type tokenPlan struct {
	t       *testing.T
	mu      sync.Mutex
	ttls    []time.Duration
	calls   int
	expired string
}

func (p *tokenPlan) get(context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ttl := p.ttls[min(p.calls, len(p.ttls)-1)]
	p.calls++
	switch {
	case ttl == 0:
		return "", errors.New("token service down")
	case ttl < 0:
		if p.expired == "" {
			p.expired = token(p.t, "gus", -time.Minute)
		}
		return p.expired, nil
	}
	return token(p.t, "gus", ttl), nil
}

func (p *tokenPlan) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// TestSDKTokenRefreshBeforeExpiry: the Go SDK answers the gateway's
// expiry warning with GetToken and a refresh frame; the connection
// outlives its first token.
func TestSDKTokenRefreshBeforeExpiry(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, wsgate.Config{Authenticate: jwtAuth(t), PingInterval: 100 * time.Millisecond})
	plan := &tokenPlan{t: t, ttls: []time.Duration{2 * time.Second, time.Hour}}
	firstExpiry := time.Now().Add(2 * time.Second)
	c := sdkDial(t, ts, client.Options{GetToken: plan.get})
	gatewayWait(t, "the refresh", func() bool { return plan.count() == 2 })
	time.Sleep(time.Until(firstExpiry.Add(300 * time.Millisecond)))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if got, err := c.Request(ctx, wire.ActionPing, []byte("hi")); err != nil || string(got) != "hi" {
		t.Fatalf("ping after the first token's expiry: got %q, %v", got, err)
	}
	if s := c.State(); s != client.StateConnected {
		t.Errorf("state: got %v, want connected", s)
	}
	if n := ts.Stats().Accepted; n != 1 {
		t.Errorf("connections accepted: got %d, want 1 (no reconnect)", n)
	}
}

// TestSDKTokenExpiredThenRefused: the token service fails at the warning,
// the gateway closes with 4004, and on reconnect GetToken only has an
// expired token: the client tries it once, asks GetToken again, gets the
// same token and stops. The gateway counts exactly one refused handshake.
func TestSDKTokenExpiredThenRefused(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, wsgate.Config{Authenticate: jwtAuth(t), PingInterval: 100 * time.Millisecond})
	plan := &tokenPlan{t: t, ttls: []time.Duration{2 * time.Second, 0, -1}}
	var mu sync.Mutex
	var states []client.State
	var last error
	sdkDial(t, ts, client.Options{
		GetToken: plan.get,
		Backoff:  wire.Backoff{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond},
		OnStateChange: func(s client.State, err error) {
			mu.Lock()
			states, last = append(states, s), err
			mu.Unlock()
		},
	})
	gatewayWait(t, "the client to report closed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(states) > 0 && states[len(states)-1] == client.StateClosed
	})
	mu.Lock()
	defer mu.Unlock()
	if last == nil || !strings.Contains(last.Error(), "GetToken returned it again") {
		t.Errorf("closed with %v, want the same-token error", last)
	}
	if n := ts.Stats().Rejected.Unauthorized; n != 1 {
		t.Errorf("refused handshakes: got %d, want 1 (no reconnect storm)", n)
	}
	if n := plan.count(); n != 4 {
		t.Errorf("GetToken calls: got %d, want 4 (dial, failed refresh, reconnect, one more ask)", n)
	}
	t.Logf("states: %v", states)
}
