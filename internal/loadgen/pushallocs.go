package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/wsgate/wsgate"
)

// PushAllocsOptions tunes PushAllocs. Zero values take the defaults.
type PushAllocsOptions struct {
	Small  int // recipients of the first measurement; default 100
	Large  int // recipients of the second; default 2000
	Pushes int // broadcasts per measurement; default 50
}

func (o PushAllocsOptions) withDefaults() PushAllocsOptions {
	if o.Small <= 0 {
		o.Small = 100
	}
	if o.Large <= o.Small {
		o.Large = max(2000, 2*o.Small)
	}
	if o.Pushes <= 0 {
		o.Pushes = 50
	}
	return o
}

// PushAllocs measures the allocations of wsgate's push path per recipient,
// which cannot be seen from outside the process: it runs the gateway
// library in this process, connects Small and then Large raw clients that
// never read (so that no client code allocates; the pushes wait in their
// socket buffers), and counts the process's allocations over Pushes
// broadcasts at each size. allocs_per_recipient is the slope between the
// two sizes, so per-push costs (framing, the registry walk) cancel out.
func PushAllocs(ctx context.Context, o PushAllocsOptions) (res Result, err error) {
	o = o.withDefaults()
	start := time.Now()
	res = Result{Scenario: "pushallocs", Server: "wsgate", Params: fmt.Sprintf("in-process, %d and %d recipients, %d pushes", o.Small, o.Large, o.Pushes)}
	srv, addr, stop, err := startLibraryGateway(ctx)
	if err != nil {
		return res, err
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close() // the server closes its side during shutdown anyway
		}
		err = errors.Join(err, stop())
		res.Elapsed = time.Since(start).Seconds()
	}()
	var perPush [2]float64
	var perRecipientNS float64
	for i, n := range []int{o.Small, o.Large} {
		for len(conns) < n {
			c, err := rawUpgrade(ctx, addr)
			if err != nil {
				return res, err
			}
			conns = append(conns, c)
		}
		if err := waitFor(ctx, 10*time.Second, func() bool { return srv.Stats().Conns == n }); err != nil {
			return res, fmt.Errorf("wsgate: bench pushallocs: %d connections not registered: %w", n, err)
		}
		allocs, elapsed, err := measurePushes(ctx, srv, n, o.Pushes)
		if err != nil {
			return res, err
		}
		perPush[i] = allocs
		perRecipientNS = float64(elapsed.Nanoseconds()) / float64(o.Pushes*n)
	}
	slope := (perPush[1] - perPush[0]) / float64(o.Large-o.Small)
	res.add("allocs_per_push", perPush[1], fmt.Sprintf("allocs (%d recipients)", o.Large), Lower)
	res.add("allocs_per_recipient", math.Max(0, math.Round(slope*100)/100), "allocs", Lower)
	res.add("push_ns_per_recipient", perRecipientNS, "ns", Lower)
	return res, nil
}

// measurePushes broadcasts pushes times to n connections and returns the
// process's allocations per broadcast and the total time.
func measurePushes(ctx context.Context, srv *wsgate.Server, n, pushes int) (float64, time.Duration, error) {
	payload := make([]byte, 64)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	t0 := time.Now()
	for range pushes {
		k, err := srv.Push(ctx, wsgate.Target{All: true}, 120, payload)
		if err != nil || k != n {
			return 0, 0, fmt.Errorf("wsgate: bench pushallocs: push reached %d of %d: %v", k, n, err)
		}
	}
	elapsed := time.Since(t0)
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(pushes), elapsed, nil
}

// startLibraryGateway serves a gateway on 127.0.0.1:0 in this process.
func startLibraryGateway(ctx context.Context) (*wsgate.Server, string, func() error, error) {
	srv, err := wsgate.New(wsgate.Config{InsecureNoAuth: true, HandshakeRate: -1, MessageRate: -1})
	if err != nil {
		return nil, "", nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, fmt.Errorf("wsgate: bench pushallocs: %w", err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	stop := func() error {
		cancel()
		return <-done // Serve's graceful shutdown is bounded by its ShutdownTimeout
	}
	return srv, ln.Addr().String(), stop, nil
}

// rawUpgrade opens /ws with a hand-written handshake and returns the bare
// socket; nothing reads from it afterwards.
func rawUpgrade(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("wsgate: bench pushallocs: %w", err)
	}
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // a fresh TCP socket accepts deadlines
	if _, err := io.WriteString(c, req); err != nil {
		_ = c.Close() // the write error is the one to report
		return nil, fmt.Errorf("wsgate: bench pushallocs: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
	if err != nil {
		_ = c.Close() // the read error is the one to report
		return nil, fmt.Errorf("wsgate: bench pushallocs: upgrade: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		_ = c.Close() // the refusal is the one to report
		return nil, fmt.Errorf("wsgate: bench pushallocs: upgrade: %s", resp.Status)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
