package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/internal/testbin"
	"github.com/wsgate/wsgate/wire"
)

// jsEvent is one line resume_test.mjs prints.
type jsEvent struct {
	Hello   string `json:"hello"`
	Seq     uint64 `json:"seq"`
	Payload string `json:"payload"`
	Gap     bool   `json:"gap"`
	Error   string `json:"error"`
}

// TestJSClientResume: the JavaScript client, disconnected while ten pushes
// happen, reconnects, resumes and gets all ten exactly once and in order,
// then live pushes continue.
func TestJSClientResume(t *testing.T) {
	leakcheck.Check(t)
	node := testbin.Require(t, "node")
	modules := nodeModules(t)
	gw := gatewaytest.Start(t, wsgate.Config{}, nil)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "resume_test.mjs", gw.WS+"/ws?user=jules")
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	events := make(chan jsEvent, 64)
	go func() { // ends when the script's stdout closes
		defer close(events)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e jsEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				events <- e
			}
		}
	}()
	defer func() {
		_ = stdin.Close() // the script closes its client and exits
		for range events {
		}
		if err := cmd.Wait(); err != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Errorf("resume_test.mjs: %v", err)
		}
	}()
	js := &jsSide{t: t, events: events}

	first := js.next().Hello
	push(t, gw, "p1")
	js.expectPush(1)
	if err := gw.Disconnect(first, wire.CloseGoingAway, "test"); err != nil {
		t.Fatal(err)
	}
	waitOffline(t, gw, "jules")
	for i := 2; i <= 11; i++ {
		push(t, gw, "p"+strconv.Itoa(i))
	}
	if h := js.next().Hello; h == "" || h == first {
		t.Fatalf("after the disconnect: got %q, want a new hello", h)
	}
	for i := uint64(2); i <= 11; i++ {
		js.expectPush(i)
	}
	push(t, gw, "p12")
	js.expectPush(12)
}

type jsSide struct {
	t      *testing.T
	events <-chan jsEvent
}

func (j *jsSide) next() jsEvent {
	j.t.Helper()
	select {
	case e, ok := <-j.events:
		if !ok {
			j.t.Fatal("resume_test.mjs ended early")
		}
		if e.Error != "" {
			j.t.Fatalf("resume_test.mjs: %s", e.Error)
		}
		return e
	case <-time.After(gatewaytest.Timeout):
		j.t.Fatal("no event from resume_test.mjs")
		return jsEvent{}
	}
}

func (j *jsSide) expectPush(seq uint64) {
	j.t.Helper()
	e := j.next()
	if e.Seq != seq || e.Payload != "p"+strconv.FormatUint(seq, 10) || e.Gap {
		j.t.Fatalf("got %+v, want push %d without a gap", e, seq)
	}
}

func push(t *testing.T, gw *gatewaytest.Gateway, payload string) {
	t.Helper()
	if _, err := gw.Publish(context.Background(), wsgate.Target{User: "jules"}, 120, []byte(payload)); err != nil {
		t.Fatal(err)
	}
}

func waitOffline(t *testing.T, gw *gatewaytest.Gateway, user string) {
	t.Helper()
	deadline := time.Now().Add(gatewaytest.Timeout)
	for gw.Presence(user) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s still connected", user)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
