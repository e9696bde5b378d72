// Package nginx holds the nginx configuration documented in docs/DEPLOYMENT.md
// (wsgate.conf) and the tests that run a real nginx with it: in front of one
// gateway, and in front of two gateway nodes sharing a real Redis while one
// of them drains.
package nginx
