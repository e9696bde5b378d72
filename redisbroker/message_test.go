package redisbroker

import (
	"bytes"
	"testing"

	"github.com/wsgate/wsgate"
)

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range []wsgate.Message{
		{Target: wsgate.Target{Topic: "news:sport"}, Action: 120, Payload: []byte("a:b:c")},
		{Target: wsgate.Target{Conn: "k7q2m9a0-1v"}, Action: 4294967295, Payload: []byte{0, 1, 2}},
		{Target: wsgate.Target{All: true}, Action: 100},
		{Target: wsgate.Target{User: "u:1"}, Action: 121, Seq: 1 << 53, Payload: []byte("x")},
	} {
		got, err := decode(string(encode(&m)))
		if err != nil {
			t.Errorf("%+v: decode: %v", m, err)
			continue
		}
		if got.Target.User != m.Target.User || got.Target.Topic != m.Target.Topic || got.Target.Conn != m.Target.Conn ||
			got.Target.All != m.Target.All || got.Action != m.Action || got.Seq != m.Seq || !bytes.Equal(got.Payload, m.Payload) {
			t.Errorf("round trip: got %+v, want %+v", got, m)
		}
	}
}

func TestMessageMalformed(t *testing.T) {
	for _, s := range []string{
		"", "u", "x:0:120:0:", "t:0:120:9:short", "t:0:4294967296:1:t", "t:1:120:1:t", "u:0:120:1:u",
		"t:0:120:0:", "a:0:-1:0:", "t::120:1:t",
	} {
		if m, err := decode(s); err == nil {
			t.Errorf("decode(%q): got %+v, want an error", s, m)
		}
	}
}
