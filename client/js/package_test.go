package wsgatejs_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testbin"
)

// TestTypesCompile type-checks test/typed_usage.ts against wsgate.d.ts and
// wire.d.ts with the TypeScript pinned in package-lock.json (installed by
// scripts/install-deps.sh). The file's @ts-expect-error lines make misuse
// that the types fail to reject an error too.
func TestTypesCompile(t *testing.T) {
	node := testbin.Require(t, "node")
	tsc := filepath.Join("node_modules", "typescript", "bin", "tsc")
	if _, err := os.Stat(tsc); err != nil {
		testbin.Missing(t, "typescript not installed in client/js/node_modules (run scripts/install-deps.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, tsc, "-p", "test/tsconfig.json").CombinedOutput()
	if err != nil {
		t.Fatalf("tsc -p test/tsconfig.json: %v\n%s", err, out)
	}
}

// TestNpmPack packs the package offline and checks what goes in it: the
// modules, their types and the README, nothing else.
func TestNpmPack(t *testing.T) {
	npm := testbin.Require(t, "npm")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "pack", "--offline", "--json", "--pack-destination", dir)
	cmd.Env = append(os.Environ(), "npm_config_cache="+filepath.Join(dir, "cache"), "npm_config_update_notifier=false")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("npm pack --offline: %v\n%s", err, out)
	}
	tgz, err := filepath.Glob(filepath.Join(dir, "wsgate-client-*.tgz"))
	if err != nil || len(tgz) != 1 {
		t.Fatalf("npm pack wrote %v (%v), want one wsgate-client-*.tgz", tgz, err)
	}
	list, err := exec.CommandContext(ctx, "tar", "-tzf", tgz[0]).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(string(list))
	slices.Sort(got)
	want := []string{"package/README.md", "package/package.json", "package/wire.d.ts", "package/wire.js", "package/wsgate.d.ts", "package/wsgate.js"}
	if !slices.Equal(got, want) {
		t.Errorf("package contents: got %v, want %v", got, want)
	}
}
