// Package deploy holds what runs wsgate outside a Go program: the example
// config file (wsgate.toml), the systemd unit (systemd/), the compose file
// (compose/) and, at the repository root, the Dockerfile. Its tests build
// the binary the Dockerfile builds, with the same script, and check it,
// the unit (systemd-analyze verify) and the config file.
package deploy
