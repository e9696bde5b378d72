package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/loadgen"
)

const benchUsage = `Usage: wsgate bench SCENARIO [flags]

Load generator: measures a gateway (wsgate or the baseline in bench/baseline)
from the outside over the simple form of the action protocol on /ws.

Scenarios:
  idle        hold --n connections idle; server RSS per connection (--server-pid)
  fanout      --n connections; push to all through the HTTP API; time until the
              last connection has it (p50/p99/max over --repeats)
  rpc         --conns connections doing echo requests (action 100): msgs/s,
              p50/p99/p99.9 latency, msgs per server CPU-second (--server-pid)
  connect     --n handshakes, --conc at a time, each connection dropped once open
  pushallocs  allocations of wsgate's push path per recipient (in-process library)
  peer        --scenario idle|connect|personal|multi|fanout|busy against wsgate
              or Centrifugo (--peer), each over its own protocol with JWTs
              (--secret); see bench/peer/run.sh
  report      read --json result files and print the markdown tables of RESULTS.md

The gateway must answer action 100 with the same action and payload
(wsgate serve --demo) and allow the load: wsgate serve --insecure-no-auth
--message-rate -1 --handshake-rate -1. Run "wsgate bench SCENARIO --help" for
the flags of a scenario.
`

// runBench implements "wsgate bench".
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, benchUsage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "idle", "fanout", "rpc", "connect", "pushallocs", "peer":
		return runScenario(ctx, cmd, rest, stdout, stderr)
	case "report":
		return runBenchReport(rest, stdout, stderr)
	case "hold":
		// A worker started by idle or fanout --procs: the bench process
		// feeds it commands on stdin and closing stdin ends it.
		return loadgen.Hold(ctx, rest, os.Stdin, stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, benchUsage)
		return nil
	default:
		fmt.Fprintf(stderr, "wsgate bench: unknown scenario %q\n\n%s", cmd, benchUsage)
		return errUsage
	}
}

// benchFlags are the flags of every scenario; a scenario registers only
// those it uses.
type benchFlags struct {
	cfg      loadgen.Config
	jsonOut  string
	timeout  time.Duration
	progress time.Duration

	idle     loadgen.IdleOptions
	fanout   loadgen.FanoutOptions
	rpc      loadgen.RPCOptions
	connect  loadgen.ConnectOptions
	pushAllo loadgen.PushAllocsOptions
	name     string // peer: the result's scenario name
	peerCfg  loadgen.PeerConfig
	peer     loadgen.PeerOptions
}

func (b *benchFlags) register(fs *flag.FlagSet, scenario string) {
	if scenario != "pushallocs" {
		fs.StringVar(&b.cfg.URL, "url", "ws://127.0.0.1:8080/ws", "WebSocket `URL` of the gateway")
		fs.IntVar(&b.cfg.ServerPID, "server-pid", 0, "`pid` of the gateway on this machine, for RSS and CPU figures (0: none)")
		fs.DurationVar(&b.cfg.DialTimeout, "dial-timeout", 10*time.Second, "timeout of one handshake")
	}
	fs.StringVar(&b.cfg.Server, "label", "", "name of the server in the results (default: host:port of --url)")
	fs.IntVar(&b.cfg.Round, "round", 0, "round number recorded in the results")
	fs.StringVar(&b.jsonOut, "json", "", "append the result as one JSON line to this `file`")
	fs.DurationVar(&b.timeout, "timeout", 10*time.Minute, "stop the scenario after this long")
	fs.DurationVar(&b.progress, "progress", time.Second, "interval of the progress line (0: none)")
	switch scenario {
	case "idle":
		fs.IntVar(&b.idle.N, "n", 18000, "connections")
		fs.IntVar(&b.idle.Conc, "conc", 100, "handshakes in flight")
		fs.DurationVar(&b.idle.Settle, "settle", 3*time.Second, "idle time before the RSS sample")
		fs.IntVar(&b.idle.Procs, "procs", 1, "processes holding the connections (each stays under the open-files limit)")
	case "fanout":
		fs.StringVar(&b.cfg.API, "api", "", "base `URL` of the push API (default: http://host:port of --url)")
		fs.StringVar(&b.cfg.APIKey, "api-key", "", "API `key` (default $WSGATE_API_KEY)")
		fs.IntVar(&b.fanout.N, "n", 10000, "connections")
		fs.IntVar(&b.fanout.Conc, "conc", 100, "handshakes in flight")
		fs.IntVar(&b.fanout.Repeats, "repeats", 30, "measured pushes")
		fs.IntVar(&b.fanout.Warmup, "warmup", 3, "unmeasured pushes first")
		fs.IntVar(&b.fanout.Size, "size", 64, "push payload bytes (at least 8)")
		fs.DurationVar(&b.fanout.Gap, "gap", 100*time.Millisecond, "pause between pushes")
		fs.IntVar(&b.fanout.Procs, "procs", 1, "processes holding the connections")
	case "rpc":
		fs.IntVar(&b.rpc.Conns, "conns", 50, "connections")
		fs.IntVar(&b.rpc.Window, "window", 1, "requests in flight per connection")
		fs.IntVar(&b.rpc.Size, "size", 64, "request payload bytes (at least 8)")
		fs.DurationVar(&b.rpc.Warmup, "warmup", time.Second, "load before measuring")
		fs.DurationVar(&b.rpc.Duration, "duration", 10*time.Second, "measured time")
	case "connect":
		fs.IntVar(&b.connect.N, "n", 5000, "handshakes")
		fs.IntVar(&b.connect.Conc, "conc", 32, "handshakes in flight")
	case "peer":
		b.registerPeer(fs)
	case "pushallocs":
		fs.IntVar(&b.pushAllo.Small, "small", 100, "recipients of the first measurement")
		fs.IntVar(&b.pushAllo.Large, "large", 2000, "recipients of the second")
		fs.IntVar(&b.pushAllo.Pushes, "pushes", 50, "broadcasts per measurement")
	}
}

func (b *benchFlags) registerPeer(fs *flag.FlagSet) {
	fs.StringVar((*string)(&b.peerCfg.Peer), "peer", "wsgate", "protocol of the server: wsgate (full form on /ws) or centrifugo (JSON on /connection/websocket)")
	fs.StringVar(&b.peerCfg.Secret, "secret", "", "HS256 `secret` the server verifies tokens with (default $WSGATE_JWT_SECRET)")
	fs.StringVar(&b.cfg.API, "api", "", "base `URL` of the push API (default: http://host:port of --url)")
	fs.StringVar(&b.cfg.APIKey, "api-key", "", "API `key` (default $WSGATE_API_KEY)")
	o := &b.peer
	fs.StringVar(&o.Scenario, "scenario", "fanout", "idle, connect, personal, multi, fanout or busy")
	fs.IntVar(&o.N, "n", 0, "connections, or handshakes for connect (0: 18000 idle, 5000 connect, else 10000)")
	fs.IntVar(&o.Conc, "conc", 100, "handshakes in flight")
	fs.IntVar(&o.Procs, "procs", 1, "processes holding the connections")
	fs.IntVar(&o.Users, "users", 1000, "personal, multi: users pushed to per round")
	fs.IntVar(&o.PushConc, "push-conc", 16, "personal: push calls in flight")
	fs.IntVar(&o.Topics, "topics", 1000, "busy: busy topics")
	fs.IntVar(&o.BusyRate, "busy-rate", 1000, "busy: pushes per second to the busy topics")
	fs.IntVar(&o.Repeats, "repeats", 0, "measured rounds (0: 10 personal and multi, else 30)")
	fs.IntVar(&o.Warmup, "warmup", 3, "unmeasured rounds first")
	fs.IntVar(&o.Size, "size", 64, "payload bytes (a JSON object, at least 24)")
	fs.DurationVar(&o.Gap, "gap", 100*time.Millisecond, "pause after each round")
	fs.DurationVar(&o.Settle, "settle", 5*time.Second, "idle: idle time before the sample")
	fs.StringVar(&b.name, "name", "", "scenario name in the results (default peer-SCENARIO), to tell server set-ups apart")
}

// runScenario parses the flags of one scenario, runs it and prints its
// summary table.
func runScenario(ctx context.Context, scenario string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wsgate bench "+scenario, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var b benchFlags
	b.register(fs, scenario)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wsgate bench %s: unexpected arguments %q\n", scenario, fs.Args())
		return errUsage
	}
	if b.cfg.APIKey == "" {
		b.cfg.APIKey = os.Getenv("WSGATE_API_KEY")
	}
	if b.peerCfg.Secret == "" {
		b.peerCfg.Secret = os.Getenv("WSGATE_JWT_SECRET")
	}
	if b.progress > 0 {
		b.cfg.Progress, b.cfg.ProgressEvery, b.cfg.ProgressTTY = stderr, b.progress, isTerminal(stderr)
	}
	b.cfg.Spawn = spawnHold
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	res, err := b.run(ctx, scenario)
	if err != nil {
		return err
	}
	if err := loadgen.WriteTable(stdout, res); err != nil {
		return err
	}
	return appendJSON(b.jsonOut, res)
}

func (b *benchFlags) run(ctx context.Context, scenario string) (loadgen.Result, error) {
	switch scenario {
	case "idle":
		return loadgen.Idle(ctx, b.cfg, b.idle)
	case "fanout":
		return loadgen.Fanout(ctx, b.cfg, b.fanout)
	case "rpc":
		return loadgen.RPC(ctx, b.cfg, b.rpc)
	case "connect":
		return loadgen.Connect(ctx, b.cfg, b.connect)
	case "peer":
		res, err := loadgen.PeerScenario(ctx, b.cfg, b.peerCfg, b.peer)
		if b.name != "" {
			res.Scenario = b.name
		}
		return res, err
	default:
		res, err := loadgen.PushAllocs(ctx, b.pushAllo)
		if b.cfg.Server != "" {
			res.Server = b.cfg.Server
		}
		res.Round = b.cfg.Round
		return res, err
	}
}

// appendJSON appends res as one line to path; "" writes nothing.
func appendJSON(path string, res loadgen.Result) error {
	if path == "" {
		return nil
	}
	line, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("wsgate bench: %w", err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("wsgate bench: %w", err)
	}
	_, werr := f.Write(append(line, '\n'))
	return errors.Join(werr, f.Close())
}

// runBenchReport implements "wsgate bench report FILE...".
func runBenchReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wsgate bench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	servers := fs.String("servers", "", "comma-separated server labels in column order (default: order of appearance)")
	base := fs.String("base", "", "server the ratios divide by (default: the last one)")
	spread := fs.Bool("spread", false, "show min–max over the rounds next to each median")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "wsgate bench report: give the result files written with --json")
		return errUsage
	}
	var all []loadgen.Result
	for _, path := range fs.Args() {
		res, err := readResultFile(path)
		if err != nil {
			return err
		}
		all = append(all, res...)
	}
	var order []string
	if *servers != "" {
		order = strings.Split(*servers, ",")
	}
	return loadgen.WriteReport(stdout, all, loadgen.ReportOptions{Servers: order, Base: *base, Spread: *spread})
}

func readResultFile(path string) ([]loadgen.Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("wsgate bench report: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only; ReadResults reports read errors
	return loadgen.ReadResults(f)
}

// spawnHold starts "wsgate bench hold ARGS" from this very binary.
func spawnHold(ctx context.Context, args []string) (*loadgen.Worker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("wsgate bench: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, append([]string{"bench", "hold"}, args...)...)
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 5 * time.Second
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("wsgate bench: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("wsgate bench: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("wsgate bench: start worker: %w", err)
	}
	return &loadgen.Worker{Stdin: in, Stdout: out, Wait: cmd.Wait}, nil
}

// isTerminal reports whether w is a character device, where the progress
// line can be rewritten in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
