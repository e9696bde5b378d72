// Command tlsidle measures what TLS costs per idle connection on the
// gateway: the RSS of a "wsgate serve" process holding N idle /echo
// connections (one echo each, then idle) over ws:// in reactor mode, over
// ws:// in blocking mode and over wss://, which the engine always drives in
// blocking mode. The second row separates the cost of the blocking mode
// (a reader goroutine and its buffer) from the cost of TLS itself.
//
//	go run ./bench/tlsidle -n 4000 -rounds 3
//
// The server is the real binary (built from ./cmd/wsgate into a temporary
// directory), with a self-signed ECDSA P-256 certificate made here; this
// process is the client. Variants are interleaved within each round and the
// table shows medians, because the machine's load drifts.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/procstat"
	"github.com/wsgate/wsgate/websocket"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tlsidle:", err)
		os.Exit(1)
	}
}

type variant struct {
	name string
	tls  bool
	args []string
}

var variants = []variant{
	{"ws, reactor", false, nil},
	{"ws, blocking", false, []string{"--mode", "blocking"}},
	{"wss (blocking)", true, nil},
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tlsidle", flag.ContinueOnError)
	n := fs.Int("n", 4000, "idle connections per server")
	rounds := fs.Int("rounds", 3, "interleaved rounds")
	conc := fs.Int("conc", 50, "connections opened at once")
	settle := fs.Duration("settle", 3*time.Second, "wait after the last connection before sampling")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tlsidle-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "wsgate")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/wsgate").CombinedOutput(); err != nil {
		return fmt.Errorf("go build (run from the repository root): %v\n%s", err, out)
	}
	certFile, keyFile, pool, err := selfSigned(dir)
	if err != nil {
		return err
	}
	per := make(map[string][]float64)
	for r := 1; r <= *rounds; r++ {
		for _, v := range variants {
			kib, err := measure(bin, v, certFile, keyFile, pool, *n, *conc, *settle)
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			fmt.Fprintf(stderr, "round %d %-15s %.1f KiB/conn\n", r, v.name, kib)
			per[v.name] = append(per[v.name], kib)
		}
	}
	fmt.Fprintf(stdout, "| %d idle /echo connections | RSS per connection, median (rounds) |\n|---|---|\n", *n)
	for _, v := range variants {
		xs := per[v.name]
		s := slices.Clone(xs)
		slices.Sort(s)
		raw := make([]string, len(xs))
		for i, x := range xs {
			raw[i] = fmt.Sprintf("%.1f", x)
		}
		fmt.Fprintf(stdout, "| %s | %.1f KiB (%s) |\n", v.name, s[len(s)/2], strings.Join(raw, ", "))
	}
	return nil
}

// measure starts a server, opens n connections with one echo each, waits,
// and returns the growth of the server's RSS per connection in KiB.
func measure(bin string, v variant, certFile, keyFile string, pool *x509.CertPool, n, conc int, settle time.Duration) (float64, error) {
	addr, err := freeAddr()
	if err != nil {
		return 0, err
	}
	args := append([]string{"serve", "--addr", addr, "--insecure-no-auth", "--handshake-rate", "-1", "--log-level", "warn"}, v.args...)
	scheme, hscheme := "ws", "http"
	if v.tls {
		args = append(args, "--tls-cert", certFile, "--tls-key", keyFile)
		scheme, hscheme = "wss", "https"
	}
	srv := exec.Command(bin, args...)
	srv.Stdout, srv.Stderr = io.Discard, os.Stderr
	if err := srv.Start(); err != nil {
		return 0, err
	}
	defer func() {
		_ = srv.Process.Kill() // measurement over
		_ = srv.Wait()         // killed
	}()
	tc := &tls.Config{RootCAs: pool}
	if err := waitReady(hscheme+"://"+addr+"/healthz", tc); err != nil {
		return 0, err
	}
	time.Sleep(settle)
	before, err := procstat.RSS(srv.Process.Pid)
	if err != nil {
		return 0, err
	}
	conns, err := open(scheme+"://"+addr+"/echo", tc, n, conc)
	defer func() {
		for _, c := range conns {
			_ = c.CloseNow() // done measuring
		}
	}()
	if err != nil {
		return 0, err
	}
	time.Sleep(settle)
	after, err := procstat.RSS(srv.Process.Pid)
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(n) / 1024, nil
}

// open dials n connections, conc at a time, and echoes one message on each.
func open(url string, tc *tls.Config, n, conc int) ([]*websocket.Conn, error) {
	conns := make([]*websocket.Conn, n)
	errs := make([]error, n)
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, _, err := websocket.Dial(ctx, url, nil, &websocket.DialOptions{TLSConfig: tc})
			if err != nil {
				errs[i] = err
				return
			}
			conns[i] = c
			if err := c.Write(ctx, websocket.TextMessage, []byte("hello")); err != nil {
				errs[i] = err
				return
			}
			_, _, errs[i] = c.Read(ctx)
		}()
	}
	wg.Wait()
	out := conns[:0]
	for _, c := range conns {
		if c != nil {
			out = append(out, c)
		}
	}
	return out, errors.Join(errs...)
}

func waitReady(url string, tc *tls.Config) error {
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: time.Second}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := hc.Get(url)
		if err == nil {
			_ = resp.Body.Close() // status only
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("%s not ready", url)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir.
func selfSigned(dir string) (certFile, keyFile string, pool *x509.CertPool, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", nil, err
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", "", nil, err
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool, nil
}
