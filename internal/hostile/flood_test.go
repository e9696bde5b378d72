//go:build linux

package hostile

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/procstat"
)

// handshakeFlood opens and closes WebSockets from one address as fast as
// 32 workers can for d, with valid tokens (valid) or a bad one, and
// returns the answers, the attempts per second and the gateway's CPU time
// per attempt: the measured attack behind --handshake-rate's default
// (docs/DEPLOYMENT.md).
func handshakeFlood(t *testing.T, g *gateway, valid bool, d time.Duration) (ans *tally, perSec float64, cpuPer time.Duration) {
	ans = &tally{}
	bad := "Authorization: Bearer not-a-token"
	good := authz(t, "flood")
	cpu0, err := procstat.CPU(g.pid)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	end := time.Now().Add(d)
	t0 := time.Now()
	fanOut(32, func(int) {
		for time.Now().Before(end) {
			h := bad
			if valid {
				h = good
			}
			c, st, _, err := upgrade(g.addr, "/ws", h)
			n.Add(1)
			switch {
			case err != nil:
				ans.add("error")
			default:
				ans.add(fmt.Sprint("HTTP ", st))
			}
			if c != nil {
				_ = c.Close() // open and go: the flood is in the handshakes
			}
		}
	})
	elapsed := time.Since(t0)
	cpu1, err := procstat.CPU(g.pid)
	if err != nil {
		t.Fatal(err)
	}
	return ans, float64(n.Load()) / elapsed.Seconds(), (cpu1 - cpu0) / time.Duration(max(n.Load(), 1))
}

func floodUnlimited(t *testing.T, g *gateway) string {
	ans, rate, cpu := handshakeFlood(t, g, true, 5*time.Second)
	bad, brate, bcpu := handshakeFlood(t, g, false, 5*time.Second)
	if ans.get("HTTP 101") == 0 || bad.get("HTTP 401") == 0 {
		t.Errorf("got %s and %s, want 101s and 401s", ans, bad)
	}
	return fmt.Sprintf("valid tokens: %.0f/s, %v CPU each; bad tokens: %.0f/s, %v CPU each",
		rate, cpu.Round(time.Microsecond), brate, bcpu.Round(time.Microsecond))
}

func floodDefault(t *testing.T, g *gateway) string {
	ans, rate, cpu := handshakeFlood(t, g, false, 5*time.Second)
	if ans.get(fmt.Sprint("HTTP ", http.StatusTooManyRequests)) == 0 {
		t.Errorf("got %s, want 429 beyond the default rate", ans)
	}
	time.Sleep(time.Second) // the health probe after the case needs a token back
	return fmt.Sprintf("bad tokens: %.0f/s, %v CPU each: %s", rate, cpu.Round(time.Microsecond), ans)
}
