package redis

import (
	"bytes"
	"testing"

	"github.com/wsgate/wsgate/broker"
)

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range []broker.Message{
		{Target: broker.Target{Topic: "news:sport"}, Action: 120, Payload: []byte("a:b:c")},
		{Target: broker.Target{Conn: "k7q2m9a0-1v"}, Action: 4294967295, Payload: []byte{0, 1, 2}},
		{Target: broker.Target{All: true}, Action: 100},
		{Target: broker.Target{User: "u:1"}, Action: 121, Epoch: 7, Seq: 1 << 53, Payload: []byte("x")},
	} {
		got, _, err := decode(string(encode(&m)))
		if err != nil {
			t.Errorf("%+v: decode: %v", m, err)
			continue
		}
		if got.Target != m.Target || got.Action != m.Action || got.Seq != m.Seq || got.Epoch != m.Epoch || !bytes.Equal(got.Payload, m.Payload) {
			t.Errorf("round trip: got %+v, want %+v", got, m)
		}
	}
}

func TestMessageMalformed(t *testing.T) {
	for _, s := range []string{
		"", "u", "x:0:0:0:120:0:", "t:0:0:0:120:9:short", "t:0:0:0:4294967296:1:t", "t:0:1:0:120:1:t",
		"u:0:0:0:120:1:u", "u:0:3:0:120:1:u", "u:3:0:0:120:1:u", "t:0:0:0:120:0:", "a:0:0:0:-1:0:", "t::0:0:120:1:t",
	} {
		if m, _, err := decode(s); err == nil {
			t.Errorf("decode(%q): got %+v, want an error", s, m)
		}
	}
}
