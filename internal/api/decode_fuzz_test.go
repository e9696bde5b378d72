package api

import (
	"bytes"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzPushBodiesInSequence checks the invariant the pooled body decoder
// relies on: decoding body b after body a, on an API whose decoder may be
// reused from a, gives exactly what decoding b on a fresh API gives (the
// same target, action and payload, or the same error). chunked sends the
// bodies without a Content-Length, as a streaming client does.
func FuzzPushBodiesInSequence(f *testing.F) {
	for _, s := range [][2]string{
		{`{"to":{"user":"a"},"action":120,"json":{"n":1}}`, `{"to":{"user":"b"},"action":121,"data":"aGk="}`},
		{`{"to":{"user":"a"},"action":120,"json":{"n":1}} {"to":`, `{"to":{"topic":"t"},"action":122}`},
		{`{"to":{"user":"a"},"action":120,"json":[1,`, `{"to":{"all":true},"action":123,"json":"s"}`},
		{` {"to":{"conn":"c"},"action":124}` + "\n\t", `{"to":{"users":["x","y"]},"action":125,"json":null}`},
		{`{"to":{"user":"a"},"action":120,"x":1}`, `{"action":126,"to":{"user":"d"}}`},
		{`{"to":{"user":"a"},"action":120}`, `{"to":{"user":"a"},"action":99}`},
		{`"`, `{"to":{"user":"a"},"action":120,"data":"!!"}`},
		{`{}`, ``},
	} {
		f.Add(s[0], s[1], false)
		f.Add(s[0], s[1], true)
	}
	f.Fuzz(func(t *testing.T, a, b string, chunked bool) {
		reused := &API{max: 1024}
		_ = decode(reused, a, chunked)
		got := decode(reused, b, chunked)
		want := decode(&API{max: 1024}, b, chunked)
		if got != want {
			t.Fatalf("body %q after %q: got %s, want %s (as on a fresh API)", b, a, got, want)
		}
	})
}

// decode runs decodePush on body and renders its outcome.
func decode(a *API, body string, chunked bool) string {
	var r io.Reader = strings.NewReader(body)
	if chunked {
		r = io.MultiReader(r) // hides the length from httptest.NewRequest
	}
	req := httptest.NewRequest("POST", "/api/v1/push", r)
	if chunked {
		req.ContentLength = -1 // as net/http sets it for a chunked body
	}
	to, action, payload, err := a.decodePush(httptest.NewRecorder(), req)
	if err != nil {
		return "error " + err.Error()
	}
	if payload == nil {
		payload = []byte{} // no payload and an empty one are the same push
	}
	return fmt.Sprintf("%+v action %d payload %q", to, action, bytes.Clone(payload))
}
