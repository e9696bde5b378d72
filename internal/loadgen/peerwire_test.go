package loadgen

import "testing"

func TestPeerPayloadRound(t *testing.T) {
	for _, r := range []uint64{0, 7, 1023, busyRound, 1 << 40} {
		p := peerPayload(r, 64)
		if len(p) != 64 {
			t.Errorf("round %d: payload of %d bytes, want 64: %s", r, len(p), p)
		}
		if got, ok := payloadRound(p); !ok || got != r {
			t.Errorf("round %d: payloadRound(%s) = %d, %v", r, p, got, ok)
		}
		// Centrifugo wraps it in a push envelope.
		env := []byte(`{"push":{"channel":"news","pub":{"data":` + string(p) + `,"offset":3}}}`)
		if got, ok := payloadRound(env); !ok || got != r {
			t.Errorf("round %d in an envelope: got %d, %v", r, got, ok)
		}
	}
	for _, bad := range []string{``, `{"x":1}`, `{"r":}`, `{"r":"1"}`} {
		if r, ok := payloadRound([]byte(bad)); ok {
			t.Errorf("payloadRound(%s) = %d, true; want false", bad, r)
		}
	}
}

// countEvents records what a peer message handler reported.
type countEvents struct {
	readies, fails int
	rounds         []uint64
}

func (e *countEvents) ready()          { e.readies++ }
func (e *countEvents) fail()           { e.fails++ }
func (e *countEvents) arrive(r uint64) { e.rounds = append(e.rounds, r) }

// TestCentrifugoMessage feeds the reader the shapes Centrifugo v6 sends in
// its JSON protocol: several replies and pushes in one message, one per
// line. (Pings, "{}", need a connection to answer on; the peer scenarios
// run against a real Centrifugo in bench/peer/run.sh.)
func TestCentrifugoMessage(t *testing.T) {
	var e countEvents
	msg := `{"id":1,"connect":{"client":"c1","version":"6.9.1","subs":{"personal:#u1":{}},"ping":25,"pong":true}}` + "\n" +
		`{"id":2,"subscribe":{}}` + "\n" +
		`{"push":{"channel":"news","pub":{"data":` + string(peerPayload(5, 64)) + `}}}` + "\n" +
		`{"id":3,"error":{"code":103,"message":"permission denied"}}` + "\n" +
		`{"push":{"channel":"personal:#u1","pub":{"data":` + string(peerPayload(6, 64)) + `,"offset":1}}}`
	centrifugoMessage(nil, []byte(msg), &e)
	if e.readies != 2 || e.fails != 1 || len(e.rounds) != 2 || e.rounds[0] != 5 || e.rounds[1] != 6 {
		t.Errorf("got ready %d, failed %d, rounds %v; want 2, 1, [5 6]", e.readies, e.fails, e.rounds)
	}
}
