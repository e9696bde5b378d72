package faulttest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/wsgate/wsgate/client"
	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/internal/testbin"
	"github.com/wsgate/wsgate/wire"
)

// The load: every user gets a push every pushEvery through the API of one
// node after another; each user has devicesPerUser clients on different
// nodes.
const (
	nodeCount      = 3
	userCount      = 12
	devicesPerUser = 2
	pushEvery      = 100 * time.Millisecond // 10 pushes/s per user, 120/s in all

	warmup   = 1500 * time.Millisecond // load before the fault
	recovery = 2 * time.Second         // load after the fault is over
	catchUp  = 20 * time.Second        // after the load: every device has the last accepted push

	pushTimeout = 3 * time.Second
	dialTimeout = 10 * time.Second
	pushAction  = 120

	apiKey    = "fault-test-api-key"
	jwtSecret = "fault-test-secret-0123456789"
)

// wireBackoff: reconnects within a second or two, to keep the run short.
var wireBackoff = wire.Backoff{Base: 200 * time.Millisecond, Max: 2 * time.Second}

// cluster is the system under test: nodes on one Redis.
type cluster struct {
	redis *redisServer
	nodes []*node
	hc    *http.Client
	// load is read-locked around every push; a fault write-locks it to
	// hold the load while no push can be accepted anyway.
	load sync.RWMutex
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	r := startRedis(t) // skips without redis-server, before the build
	bin := buildWsgate(t)
	logs := t.TempDir()
	c := &cluster{
		redis: r,
		hc: &http.Client{Timeout: pushTimeout, Transport: &http.Transport{
			MaxIdleConnsPerHost: userCount,
		}},
	}
	t.Cleanup(c.hc.CloseIdleConnections)
	for i := range nodeCount {
		n := &node{
			name: fmt.Sprintf("node%d", i),
			bin:  bin,
			addr: testbin.FreeAddr(t),
			log:  filepath.Join(logs, fmt.Sprintf("node%d.log", i)),
			args: []string{"--jwt-secret", jwtSecret, "--api-key", apiKey, "--redis", r.url(),
				"--handshake-rate", "-1", "--log-level", "info"},
		}
		n.start(t, apiKey)
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(func() { c.stop(t) })
	return c
}

// stop ends every node with SIGTERM and fails the test on a data race or a
// panic in any node's log.
func (c *cluster) stop(t *testing.T) {
	for _, n := range c.nodes {
		if n.proc != nil {
			n.proc.stop(t)
		}
	}
	for _, n := range c.nodes {
		if lines := grepLog(n.log, "level=ERROR"); len(lines) > 0 {
			t.Logf("%s logged %d errors, the first: %s", n.name, len(lines), lines[0])
		}
		for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
			if lines := grepLog(n.log, bad); len(lines) > 0 {
				t.Errorf("%s log has %q (%d times); tail:\n%s", n.name, bad, len(lines), tail(n.log, 60))
			}
		}
	}
}

// alive fails the test if a node exited that the test did not stop.
func (c *cluster) alive(t *testing.T) {
	t.Helper()
	for _, n := range c.nodes {
		select {
		case <-n.proc.exited:
			t.Fatalf("%s exited by itself:\n%s", n.name, tail(n.log, 40))
		default:
		}
	}
}

func (c *cluster) dumpLogs(t *testing.T) {
	t.Helper()
	for _, n := range c.nodes {
		t.Logf("%s log (tail):\n%s", n.name, tail(n.log, 25))
	}
	t.Logf("redis log (tail):\n%s", tail(c.redis.logPath(), 15))
}

// push sends one push to user through node's API and returns the seq of a
// 200 answer. refused is true when the node could not be reached at all,
// so the push certainly did not go in.
func (c *cluster) push(ctx context.Context, n *node, user, payload string) (seq uint64, refused bool, err error) {
	body, _ := json.Marshal(map[string]any{ // plain values always encode
		"to": map[string]string{"user": user}, "action": pushAction,
		"data": base64.StdEncoding.EncodeToString([]byte(payload)),
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.http()+"/api/v1/push", bytes.NewReader(body))
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, errors.Is(err, syscall.ECONNREFUSED), err
	}
	defer func() { _ = resp.Body.Close() }() // read below
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	var ans struct {
		Seq *uint64 `json:"seq"`
	}
	if err := json.Unmarshal(b, &ans); err != nil || ans.Seq == nil {
		return 0, false, fmt.Errorf("answer without seq: %s", b)
	}
	return *ans.Seq, false, nil
}

// pushLoop pushes to u every pushEvery until stop is closed, each push
// after the previous one's answer, through node after node; a node that
// refuses the connection (it is down) is skipped for the same push. A push
// in flight when stop closes runs to its answer (pushTimeout bounds it).
func (c *cluster) pushLoop(stop <-chan struct{}, u *userLog, first int) {
	ctx := context.Background()
	tick := time.NewTicker(pushEvery)
	defer tick.Stop()
	for n, k := int64(1), first; ; n++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		payload := u.payload(n)
		var err error
		c.load.RLock()
		for try := 0; try < len(c.nodes); try++ {
			k++
			var seq uint64
			var refused bool
			start := time.Now()
			seq, refused, err = c.push(ctx, c.nodes[k%len(c.nodes)], u.name, payload)
			u.took(time.Since(start))
			if err == nil {
				u.ok(n, seq)
				break
			}
			if !refused {
				break
			}
		}
		c.load.RUnlock()
		if err != nil {
			u.failed(n, err.Error())
		}
	}
}

// scenario is one fault, applied while the load runs.
type scenario struct {
	name string
	// linkAll puts every device behind a link, not only the first of each user.
	linkAll bool
	// recovery is how long the load runs after the fault (0: recovery).
	recovery time.Duration
	fault    func(t *testing.T, c *cluster, st *stage)
}

// stage is what a fault may act on besides the cluster: the first device
// of every user connects through a link (its network) that a fault may cut.
type stage struct {
	links []*link
	users []*userLog
	devs  [][]*device
}

// waitPushes waits until the API has accepted k more pushes to every user
// than it had when mark was taken.
func (st *stage) waitPushes(t *testing.T, mark []int, k int) {
	t.Helper()
	deadline := time.Now().Add(catchUp)
	for i, u := range st.users {
		for u.count() < mark[i]+k {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d pushes accepted in %v, want %d", u.name, u.count()-mark[i], catchUp, k)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// mark is how many pushes the API has accepted per user so far.
func (st *stage) mark() []int {
	m := make([]int, len(st.users))
	for i, u := range st.users {
		m[i] = u.count()
	}
	return m
}

// crash kills every node and Redis, puts the snapshot back and starts
// them all again.
func crash(t *testing.T, c *cluster, snapshot string) {
	t.Helper()
	for _, n := range c.nodes {
		n.proc.kill(t)
	}
	c.redis.kill(t)
	c.redis.restore(t, snapshot)
	c.redis.start(t)
	for _, n := range c.nodes {
		n.start(t, apiKey)
	}
}

// cut takes the devices behind the links offline (true) or back online.
func (st *stage) cut(offline bool) {
	for _, l := range st.links {
		l.setCut(offline)
	}
}

// waitReconnected waits until every device of ds is connected on another
// connection than the one in conns.
func (st *stage) waitReconnected(t *testing.T, conns map[*device]string, ds []*device) {
	t.Helper()
	deadline := time.Now().Add(catchUp)
	for _, d := range ds {
		for d.c.State() != client.StateConnected || d.c.Hello().ConnID == conns[d] {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not reconnect within %v: %s", d.name, catchUp, d.c.State())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// second is the second device of every user; all is every device.
func second(devs [][]*device) []*device {
	var out []*device
	for _, ds := range devs {
		out = append(out, ds[1:]...)
	}
	return out
}

func all(devs [][]*device) []*device {
	var out []*device
	for _, ds := range devs {
		out = append(out, ds...)
	}
	return out
}

// connIDs returns the connection id of every device now.
func (st *stage) connIDs() map[*device]string {
	ids := make(map[*device]string)
	for _, ds := range st.devs {
		for _, d := range ds {
			ids[d] = d.c.Hello().ConnID
		}
	}
	return ids
}

// TestFaults runs every scenario on one cluster, each with its own users,
// and prints the table of what arrived.
func TestFaults(t *testing.T) {
	leakcheck.Check(t)
	c := startCluster(t)
	scenarios := []scenario{
		{name: "node-kill-9", fault: func(t *testing.T, c *cluster, _ *stage) {
			n := c.nodes[1]
			n.proc.kill(t)
			time.Sleep(time.Second)
			n.start(t, apiKey)
		}},
		{name: "redis-graceful-restart", fault: func(t *testing.T, c *cluster, _ *stage) {
			c.redis.shutdownSave(t)
			time.Sleep(time.Second)
			c.redis.start(t)
		}},
		// Some devices are offline across the fault, so that pushes they
		// missed are gone with the newer data: they must be told.
		{name: "redis-stale-snapshot", fault: func(t *testing.T, c *cluster, st *stage) {
			c.redis.snapshot(t, "stale.rdb")
			time.Sleep(time.Second) // pushes the snapshot does not have
			st.cut(true)
			time.Sleep(time.Second) // pushes the offline devices miss
			c.redis.kill(t)
			c.redis.restore(t, "stale.rdb")
			c.redis.start(t)
			time.Sleep(time.Second)
			st.cut(false)
		}},
		// Redis is away long enough for the nodes' subscribers to back off
		// for seconds; pushes accepted as soon as it is back reach the
		// channel before the nodes listen again, and no later push to the
		// same user comes to reveal the gap.
		{name: "redis-down-pushes-before-resubscribe", recovery: 300 * time.Millisecond, fault: func(t *testing.T, c *cluster, st *stage) {
			c.redis.shutdownSave(t)
			time.Sleep(6 * time.Second)
			c.redis.start(t)
		}},
		{name: "redis-empty", fault: func(t *testing.T, c *cluster, st *stage) {
			st.cut(true)
			time.Sleep(time.Second)
			c.redis.kill(t)
			c.redis.forget(t)
			time.Sleep(500 * time.Millisecond)
			c.redis.start(t)
			time.Sleep(time.Second)
			st.cut(false)
		}},
		{name: "clients-offline", fault: func(t *testing.T, c *cluster, st *stage) {
			st.cut(true)
			time.Sleep(4 * time.Second)
			st.cut(false)
		}},
		// Every process crashes and Redis comes back from a snapshot older
		// than what the clients hold: the nodes start knowing nothing of
		// the newer data, and the clients' positions are all that is left.
		// The first devices are offline from before the crash until the
		// second devices have resumed. Nothing can be pushed while every
		// node is down; the load waits until the second devices are back,
		// so that they resume before the store numbers anything again.
		{name: "cluster-crash-stale", fault: func(t *testing.T, c *cluster, st *stage) {
			c.redis.snapshot(t, "stale.rdb")
			st.waitPushes(t, st.mark(), 10)
			st.cut(true)
			st.waitPushes(t, st.mark(), 10)
			c.load.Lock()
			defer c.load.Unlock()
			conns := st.connIDs()
			crash(t, c, "stale.rdb")
			st.waitReconnected(t, conns, second(st.devs))
			st.cut(false)
		}},
		// The same crash, but the store numbers a few pushes again (in
		// the same epoch, below what the clients hold) before any client
		// is back; then every device resumes at the same position.
		{name: "cluster-crash-stale-pushes-first", linkAll: true, fault: func(t *testing.T, c *cluster, st *stage) {
			c.redis.snapshot(t, "stale.rdb")
			st.waitPushes(t, st.mark(), 30)
			st.cut(true)
			c.load.Lock()
			conns := st.connIDs()
			crash(t, c, "stale.rdb")
			mark := st.mark()
			c.load.Unlock()
			st.waitPushes(t, mark, 5) // numbered again: far fewer than the 30 the snapshot lacks
			c.load.Lock()
			defer c.load.Unlock()
			st.cut(false)
			st.waitReconnected(t, conns, all(st.devs))
		}},
	}
	var rows []row
	for i, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			cnt := runScenario(t, c, sc, fmt.Sprintf("s%d", i))
			rows = append(rows, row{sc.name, cnt})
		})
	}
	t.Logf("fault test: %d nodes, 1 redis-server, %d users × %d devices, %v per push per user\n%s",
		nodeCount, userCount, devicesPerUser, pushEvery, table(rows))
}

type row struct {
	name string
	c    counts
}

func table(rows []row) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "scenario\tusers\tdevices\taccepted\tdue\treceived\tlost signalled\tlost silent\tduplicates\treorders\tnotices\tnew epochs\treconnects\tno 200\tno 200 arrived\tslowest push\t")
	for _, r := range rows {
		c := r.c
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%v\t\n", r.name, c.users, c.devices,
			c.accepted, c.due, c.received, c.lostSignalled, c.lostSilent, c.duplicates, c.reorders,
			c.notices, c.restarts, c.reconnects, c.unsure, c.unsureArrived, c.slowest.Round(time.Millisecond))
	}
	_ = w.Flush() // into a strings.Builder
	return b.String()
}

// runScenario connects the devices of fresh users, runs the load with the
// fault in it, waits for every device to catch up, and judges.
func runScenario(t *testing.T, c *cluster, sc scenario, prefix string) counts {
	c.alive(t)
	var links []*link
	for _, n := range c.nodes {
		links = append(links, newLink(t, n.addr))
	}
	users, devs := connect(t, c, links, sc.linkAll, prefix)
	defer closeAll(t, devs)
	st := &stage{links: links, users: users, devs: devs}

	stop := make(chan struct{})
	var stopOnce sync.Once
	stopLoad := func() { stopOnce.Do(func() { close(stop) }) }
	var wg sync.WaitGroup
	defer func() { // on a failed fault too
		stopLoad()
		wg.Wait()
	}()
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.pushLoop(stop, u, i)
		}()
	}
	time.Sleep(warmup)
	t.Logf("%s: fault at %s", sc.name, time.Now().UTC().Format("15:04:05.000"))
	sc.fault(t, c, st)
	t.Logf("%s: fault over at %s", sc.name, time.Now().UTC().Format("15:04:05.000"))
	if sc.recovery > 0 {
		time.Sleep(sc.recovery)
	} else {
		time.Sleep(recovery)
	}
	stopLoad()
	wg.Wait()
	c.alive(t)

	deadline := time.Now().Add(catchUp)
	for !allCaughtUp(users, devs) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	var total counts
	var problems []string
	for i, u := range users {
		cnt, p := userCounts(u, devs[i])
		total.add(cnt)
		problems = append(problems, p...)
	}
	t.Logf("%s:\n%s", sc.name, table([]row{{sc.name, total}}))
	for r, n := range total.reasons {
		t.Logf("%s: %d× notice %q", sc.name, n, r)
	}
	for r, n := range total.failures {
		t.Logf("%s: %d× push failed: %s", sc.name, n, r)
	}
	judge(t, c, sc.name, total, problems)
	return total
}

func judge(t *testing.T, c *cluster, name string, total counts, problems []string) {
	t.Helper()
	if total.accepted == 0 {
		t.Errorf("%s: the API accepted no push", name)
	}
	if total.lostSilent != 0 || total.duplicates != 0 || total.reorders != 0 || total.foreign != 0 {
		t.Errorf("%s: %d lost silently, %d duplicates, %d reordered, %d foreign; want 0 each", name,
			total.lostSilent, total.duplicates, total.reorders, total.foreign)
		for i, p := range problems {
			if i == 12 {
				t.Logf("... %d more", len(problems)-i)
				break
			}
			t.Log(p)
		}
		c.dumpLogs(t)
	}
}

func allCaughtUp(users []*userLog, devs [][]*device) bool {
	for i, u := range users {
		last := u.last()
		for _, d := range devs[i] {
			if !d.caughtUp(last) {
				return false
			}
		}
	}
	return true
}

// connect dials devicesPerUser clients for each of userCount fresh users,
// device j of user i on node (i+j) mod nodeCount — through that node's link
// for device 0, or for every device with linkAll.
func connect(t *testing.T, c *cluster, links []*link, linkAll bool, prefix string) ([]*userLog, [][]*device) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	users := make([]*userLog, userCount)
	devs := make([][]*device, userCount)
	for i := range users {
		u := newUserLog(fmt.Sprintf("%s-u%02d", prefix, i))
		users[i] = u
		token, err := auth.Issue([]byte(jwtSecret), u.name, time.Hour, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for j := range devicesPerUser {
			n := (i + j) % len(c.nodes)
			d := &device{user: u, name: fmt.Sprintf("%s/dev%d@node%d", u.name, j, n), via: c.nodes[n].ws()}
			if j == 0 || linkAll {
				d.via = links[n].ws()
				d.name += "+link"
			}
			cl, err := client.Dial(ctx, d.via, d.options(token))
			if err != nil {
				closeAll(t, devs)
				t.Fatalf("dial %s: %v", d.name, err)
			}
			d.c = cl
			devs[i] = append(devs[i], d)
		}
	}
	return users, devs
}

func closeAll(t *testing.T, devs [][]*device) {
	t.Helper()
	var wg sync.WaitGroup
	for _, ds := range devs {
		for _, d := range ds {
			if d.c == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := d.c.Close(); err != nil {
					t.Errorf("close %s: %v", d.name, err)
				}
			}()
		}
	}
	wg.Wait()
	for _, ds := range devs {
		for _, d := range ds {
			d.c = nil
		}
	}
}
