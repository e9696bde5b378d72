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
	st, _ := a.states.Get().(*pushState)
	if st == nil {
		st = new(pushState)
	}
	defer a.states.Put(st)
	to, action, payload, err := a.decodePush(httptest.NewRecorder(), req, st)
	if err != nil {
		return "error " + err.Error()
	}
	if payload == nil {
		payload = []byte{} // no payload and an empty one are the same push
	}
	return fmt.Sprintf("%+v action %d payload %q", to, action, bytes.Clone(payload))
}

// FuzzFastPushMatchesJSON checks that the fast path changes nothing: a body
// sent with its length (which parseFast may take) decodes to exactly what
// the same body sent chunked (always encoding/json) decodes to, the same
// push or the same error, also when the API's pooled state last held
// another body.
func FuzzFastPushMatchesJSON(f *testing.F) {
	for _, s := range fastPushSeeds {
		f.Add(s, `{"to":{"user":"previous"},"action":555,"json":{"p":[1,2,3]}}`)
	}
	f.Fuzz(func(t *testing.T, body, before string) {
		a := &API{max: 1024}
		_ = decode(a, before, false)
		got := decode(a, body, false)
		want := decode(&API{max: 1024}, body, true)
		if got != want {
			t.Fatalf("body %q: with its length %s, chunked %s", body, got, want)
		}
	})
}

// fastPushSeeds are bodies parseFast takes and bodies near them that it
// must leave to encoding/json.
var fastPushSeeds = []string{
	`{"to":{"user":"u1"},"action":120,"json":{"r":1,"p":"xxxx"}}`,
	`{"action":120,"json":{"r":1,"p":"xxxx"},"to":{"user":"u1"}}`,
	` { "to" : { "topic" : "t" } , "action" : 4294967295 , "data" : "aGk=" } ` + "\n",
	`{"to":{"conn":"c-1"},"action":100}`,
	`{"to":{"all":true},"action":121,"json":null}`,
	`{"to":{"all":false},"action":121}`,
	`{"to":{"user":""},"action":120}`,
	`{"to":{"user":"a"},"action":99}`,
	`{"to":{"user":"a"},"action":4294967296}`,
	`{"to":{"user":"a"},"action":0120}`,
	`{"to":{"user":"a"},"action":0}`,
	`{"to":{"user":"a"},"action":-1}`,
	`{"to":{"user":"a"},"action":1.5e2}`,
	`{"to":{"user":"a"},"action":120,"json":"\u00e9\"]}"}`,
	`{"to":{"user":"a"},"action":120,"json":[1,{"a":[]},"}"]}`,
	`{"to":{"user":"a"},"action":120,"json":{"a":1]}`,
	`{"to":{"user":"a"},"action":120,"json":1 2}`,
	`{"to":{"user":"a"},"action":120,"json": -0.5e+3 }`,
	`{"to":{"user":"a"},"action":120,"json":tru}`,
	`{"to":{"user":"a"},"action":120,"json":}`,
	`{"to":{"user":"a"},"action":120,"data":"aGk","json":1}`,
	`{"to":{"user":"a"},"action":120,"data":null}`,
	`{"to":{"user":"\u0061"},"action":120}`,
	`{"to":{"user":"é"},"action":120}`,
	`{"to":{"user":"a\tb"},"action":120}`,
	`{"to":{"User":"a"},"action":120}`,
	`{"TO":{"user":"a"},"Action":120}`,
	`{"to":{"user":"a"},"to":{"user":"b"},"action":120}`,
	`{"to":{"user":"a"},"action":120,"action":121}`,
	`{"to":{"user":"a","topic":"b"},"action":120}`,
	`{"to":{"users":["a"]},"action":120}`,
	`{"to":null,"action":120}`,
	`{"to":{"user":"a"},"action":120,}`,
	`{"to":{"user":"a"},"action":120}}`,
	`{"to":{"user":"a"},"action":120} x`,
	`{"to":{"user":"a"},"action":120,"extra":1}`,
	`{"to":{"user":"a"}`,
	`{}`,
	``,
	`   `,
}

// TestParseFastTakesTheUsualShapes: the bodies the load generator, the CLI
// and the documentation send take the fast path (the fuzz test alone
// would pass if parseFast took nothing).
func TestParseFastTakesTheUsualShapes(t *testing.T) {
	for _, body := range []string{
		`{"action":120,"json":{"r":1,"p":"xxxxxxxx"},"to":{"user":"u17"}}`,
		`{"action":120,"json":{"r":1},"to":{"topic":"news"}}`,
		`{"action":120,"data":"aGVsbG8=","to":{"all":true}}`,
		`{"to":{"user":"alice"},"action":120,"data":"aGk="}`,
		`{"to": {"conn": "c1"}, "action": 120, "json": [1, "two", {"3": null}]}`,
	} {
		var req pushRequest
		var f fastFields
		if !parseFast([]byte(body), &req, &f) {
			t.Errorf("parseFast declined %s", body)
		}
	}
}
