// Package nginx holds the nginx configuration documented in docs/DEPLOYMENT.md
// (wsgate.conf) and the test that runs a real nginx with it in front of a real gateway.
package nginx
