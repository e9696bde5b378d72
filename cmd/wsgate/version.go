package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set with -ldflags "-X main.version=v1.2.3 -X main.commit=abc123" by
// builds that have no module version or VCS stamp of their own (a Docker
// build, whose context holds no .git); go install …@v1.2.3 and go build in
// a clone need neither.
var (
	version string
	commit  string
)

// buildInfo describes this binary: module version, commit and Go version.
type buildInfo struct {
	Version, Commit, Time, GoVersion, Platform string
	Modified                                   bool
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: "(devel)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" {
			b.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if version != "" {
		b.Version = version
	}
	if commit != "" {
		b.Commit = commit
	}
	return b
}

func (b buildInfo) String() string {
	s := "wsgate " + b.Version
	if b.Commit != "" {
		s += " commit " + b.Commit
		if b.Modified {
			s += " (modified)"
		}
	}
	if b.Time != "" {
		s += " " + b.Time
	}
	return s + " " + b.GoVersion + " " + b.Platform
}

// runVersion implements "wsgate version".
func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("wsgate version", "Usage: wsgate version\n\nPrints the module version, commit and Go version this binary was built from.\n\n", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wsgate version: takes no arguments, got %q\n", fs.Args())
		return errUsage
	}
	_, err := fmt.Fprintln(stdout, readBuildInfo())
	return err
}
