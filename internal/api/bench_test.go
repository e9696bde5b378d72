package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/api"
	"github.com/wsgate/wsgate/internal/gatewaytest"
)

// BenchmarkPushUser measures the API handler's share of a push to one
// full-form connection of a user (the personal scenario of bench/peer):
// decoding the body, the push and the answer, without net/http's own
// request parsing and response writing. Its allocations per op are what the
// handler and the push path add to every API call.
func BenchmarkPushUser(b *testing.B) {
	for _, tc := range []struct {
		name string
		size int
	}{{"history", 0}, {"nohistory", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			gw, a := apiGateway(b, tc.size)
			c := gw.DialFull(b, "u1")
			done := make(chan struct{})
			go func() { // the client reads every push, so none waits in a queue
				defer close(done)
				for {
					if _, _, err := c.Read(context.Background()); err != nil {
						return
					}
				}
			}()
			body := []byte(`{"to":{"user":"u1"},"action":120,"json":{"r":1,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}`)
			req, rd := reusablePush(body)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				w.status = 0
				clear(w.h)
				a.ServeHTTP(w, req)
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
			b.StopTimer()
			_ = c.CloseNow() // ends the reader
			<-done
		})
	}
}

// apiGateway starts a gateway with history size historySize and an API
// handler for it, with the test's key.
func apiGateway(tb testing.TB, historySize int) (*gatewaytest.Gateway, *api.API) {
	tb.Helper()
	gw := gatewaytest.Start(tb, wsgate.Config{HistorySize: historySize}, nil)
	a, err := api.New(gw.Server, api.Config{APIKey: key})
	if err != nil {
		tb.Fatal(err)
	}
	return gw, a
}

// reusablePush is a POST /api/v1/push of body with the test's key, to be
// served again and again: reset the reader to body before each.
func reusablePush(body []byte) (*http.Request, *bytes.Reader) {
	req := httptest.NewRequest(http.MethodPost, "/api/v1/push", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	rd := bytes.NewReader(body)
	req.Body = io.NopCloser(rd)
	req.ContentLength = int64(len(body))
	return req, rd
}

// discardWriter is a ResponseWriter that keeps nothing but the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(s int)   { w.status = s }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}
