package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/web"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	cases := []struct {
		method, path string
		status       int
		contains     string
		contentType  string
	}{
		{"GET", "/", 200, `id="send-action"`, "text/html"},
		{"GET", "/?token=abc", 200, `id="log"`, "text/html"},
		{"HEAD", "/", 200, "", "text/html"},
		{"GET", "/page.js", 200, `from "./wsgate.js"`, "text/javascript"},
		{"GET", "/wsgate.js", 200, `from "./wire.js"`, "text/javascript"},
		{"GET", "/wire.js", 200, "export", "text/javascript"},
		{"GET", "/unit_test.mjs", 404, "", ""},
		{"GET", "/embed.go", 404, "", ""},
		{"GET", "/nope", 404, "", ""},
		{"POST", "/", 405, "", ""},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s %s: got %d with %d bytes, want %d containing %q", tc.method, tc.path, resp.StatusCode, len(body), tc.status, tc.contains)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
			t.Errorf("%s %s: Content-Type %q, want %q", tc.method, tc.path, ct, tc.contentType)
		}
		if tc.status == 200 && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s %s: missing Content-Security-Policy", tc.method, tc.path)
		}
	}
}
