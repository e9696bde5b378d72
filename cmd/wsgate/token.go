package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/config"
)

// runToken implements "wsgate token".
func runToken(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("wsgate token", "Usage: wsgate token --secret S --user U [--ttl 24h] [--topics a,b]\n\nPrints an HS256 JWT that wsgate serve accepts.\n\n", stderr)
	secret := fs.String("secret", "", "HS256 secret, at least 16 bytes (default $WSGATE_JWT_SECRET, the secret of `wsgate serve --jwt-secret`)")
	user := fs.String("user", "", "user id (the sub claim); required")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	topics := fs.String("topics", "", "comma-separated topics the user may subscribe to (`a,b,news.*`); empty = any")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *secret == "" {
		*secret = os.Getenv("WSGATE_JWT_SECRET")
	}
	if *secret == "" {
		// The usual cause: first-run mode made the secret, and the
		// variable was never exported (the serve banner prints the line).
		fmt.Fprintln(stderr, "wsgate token: no secret: --secret is empty and WSGATE_JWT_SECRET is not set; use the secret of the server (wsgate serve --jwt-secret, or the export line its first-run banner prints)")
		return errUsage
	}
	if *user == "" {
		fmt.Fprintln(stderr, "wsgate token: --user is required")
		fs.Usage()
		return errUsage
	}
	if *ttl <= 0 {
		return fmt.Errorf("wsgate: --ttl must be positive, got %v", *ttl)
	}
	if len(*secret) < 16 {
		return fmt.Errorf("wsgate: --secret must be at least 16 bytes (the server refuses shorter ones), got %d", len(*secret))
	}
	tok, err := auth.Issue([]byte(*secret), *user, *ttl, config.SplitList(*topics), time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
