// Package web serves wsgate's test page: a single HTML page with vanilla
// JavaScript (no build step) that connects to the gateway, sends text and
// action frames and logs everything that arrives; and the live admin view
// (Admin, admin.go): charts of one node's numbers behind the API key. The
// files are embedded, so the binary needs nothing on disk, and nothing is
// loaded from elsewhere (the machine may be offline).
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	wsgatejs "github.com/wsgate/wsgate/client/js"
)

// The page's own files are index.html and page.js; the client modules
// wire.js and wsgate.js (and their .d.ts) come from the npm package in
// client/js, so the page runs exactly the code people install.
//
//go:embed static/*.html static/*.js static/admin/*.html static/admin/*.js
var files embed.FS

// Handler serves the page at "/" and its scripts beside it. Anything else
// (the admin view's files too: see Admin) is 404; methods other than GET and HEAD get 405.
func Handler() http.Handler {
	page, _ := fs.Sub(files, "static") // "static" is a valid path: cannot fail
	pageFS := http.FileServerFS(page)
	clientFS := http.FileServerFS(wsgatejs.Files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == "/admin" || strings.HasPrefix(r.URL.Path, "/admin/") {
			http.NotFound(w, r) // the admin view's files are Admin's to serve, behind the key
			return
		}
		h := w.Header()
		// The page may connect to any ws:// or wss:// URL typed into it, but
		// loads code only from this server and cannot be framed.
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer") // the URL may carry a token
		h.Set("Cache-Control", "no-cache")
		if isClientFile(r.URL.Path) {
			clientFS.ServeHTTP(w, r)
			return
		}
		pageFS.ServeHTTP(w, r)
	})
}

// isClientFile reports whether path names a file of the client package.
func isClientFile(path string) bool {
	name, ok := strings.CutPrefix(path, "/")
	if !ok || strings.Contains(name, "/") {
		return false
	}
	_, err := fs.Stat(wsgatejs.Files, name)
	return err == nil
}
