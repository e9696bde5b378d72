package websocket

import (
	"bytes"
	"compress/flate"
	"fmt"
	"math/rand/v2"
	"testing"
)

// jsonCorpus is n bytes of JSON-like pushes with repeats near and far.
func jsonCorpus(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	topics := []string{"prices.eur", "prices.usd", "chat.room42", "orders.filled", "presence"}
	var b []byte
	for i := 0; len(b) < n; i++ {
		b = fmt.Appendf(b, `{"id":%d,"topic":%q,"price":%d.%02d,"user":"user-%d","ts":17000%05d},`,
			i, topics[rng.IntN(len(topics))], rng.IntN(2000), rng.IntN(100), rng.IntN(500), rng.IntN(99999))
	}
	return b[:n]
}

// checkWindow inflates a permessage-deflate payload with the test decoder
// and checks its output and that no back-reference exceeds window.
func checkWindow(t *testing.T, payload, want []byte, window int) int {
	t.Helper()
	out, maxDist, err := InflateWindowed(nil, append(bytes.Clone(payload), syncTail...))
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	if !bytes.Equal(out, want) {
		t.Fatalf("inflated %d bytes, want the %d bytes compressed", len(out), len(want))
	}
	if maxDist > window {
		t.Fatalf("got a back-reference %d bytes back, want at most the window, %d", maxDist, window)
	}
	return maxDist
}

func TestDeflateWindowHonoured(t *testing.T) {
	for _, n := range []int{0, 1, 255, 256, 257, 4 << 10, 100 << 10} {
		msg := jsonCorpus(n)
		for bits := minWindowBits; bits <= maxWindowBits; bits++ {
			d := deflater{window: 1 << bits}
			z, err := d.compress(nil, msg)
			if err != nil {
				t.Fatalf("size %d, window bits %d: %v", n, bits, err)
			}
			maxDist := checkWindow(t, z, msg, 1<<bits)
			// The decoder sees long references when they are allowed:
			// the bound above is not met by accident.
			if n >= 100<<10 && bits == maxWindowBits && maxDist <= 1<<14 {
				t.Errorf("size %d, full window: longest reference %d, want some beyond 16 KiB", n, maxDist)
			}
			// And compress/flate reads the same stream.
			got, err := inflateMessage(z, nil, 1<<30, false)
			if err != nil || !bytes.Equal(*got, msg) {
				t.Fatalf("size %d, window bits %d: compress/flate inflate: %v", n, bits, err)
			}
		}
	}
}

// TestDeflateWindowRatio measures what a small window costs, and checks the
// choice made in deflater: compressing in window-sized pieces beats
// Huffman-only coding (which emits no back-reference at all) at every
// window size. Run with -v to see the ratios.
func TestDeflateWindowRatio(t *testing.T) {
	for _, n := range []int{1 << 10, 64 << 10} {
		msg := jsonCorpus(n)
		var hb bytes.Buffer
		hw, _ := flate.NewWriter(&hb, flate.HuffmanOnly) // the level is valid
		_, _ = hw.Write(msg)                             // writes to a bytes.Buffer do not fail
		_ = hw.Flush()
		huffman := float64(hb.Len()-len(syncTail)) / float64(n)
		for bits := minWindowBits; bits <= maxWindowBits; bits++ {
			d := deflater{window: 1 << bits}
			z, err := d.compress(nil, msg)
			if err != nil {
				t.Fatal(err)
			}
			ratio := float64(len(z)) / float64(n)
			t.Logf("%6d-byte JSON, window 2^%d: ratio %.3f (Huffman-only %.3f)", n, bits, ratio, huffman)
			if ratio >= huffman {
				t.Errorf("%d bytes, window bits %d: pieces ratio %.3f, not better than Huffman-only %.3f", n, bits, ratio, huffman)
			}
		}
	}
}
