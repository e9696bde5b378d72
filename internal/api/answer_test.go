package api

import (
	"encoding/json"
	"testing"

	"github.com/wsgate/wsgate"
)

// TestPushAnswerBytes: the push answer is byte for byte what encoding/json
// made of the map it was built as before (sorted keys, a newline).
func TestPushAnswerBytes(t *testing.T) {
	for _, tc := range []struct {
		to  wsgate.Target
		res wsgate.PushResult
	}{
		{wsgate.Target{All: true}, wsgate.PushResult{Delivered: 3}},
		{wsgate.Target{Topic: "t"}, wsgate.PushResult{Delivered: 0}},
		{wsgate.Target{Topic: "t"}, wsgate.PushResult{Delivered: -1}},
		{wsgate.Target{User: "u"}, wsgate.PushResult{Delivered: 2, Epoch: 18446744073709551615, Seq: 7}},
		{wsgate.Target{User: "u"}, wsgate.PushResult{Delivered: -1, Epoch: 1, Seq: 0}},
		{wsgate.Target{Users: []string{"a", "b"}}, wsgate.PushResult{Delivered: 2}},
	} {
		want := map[string]any{}
		if tc.res.Delivered >= 0 {
			want["delivered"] = tc.res.Delivered
		}
		if tc.to.User != "" {
			want["seq"], want["epoch"] = tc.res.Seq, tc.res.Epoch
		}
		wb, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(appendPushAnswer(nil, tc.to, tc.res)); got != string(wb)+"\n" {
			t.Errorf("%+v %+v: got %q, want %q", tc.to, tc.res, got, string(wb)+"\n")
		}
	}
}
