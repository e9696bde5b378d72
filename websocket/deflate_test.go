package websocket

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// compressedFrame returns a single-frame compressed text message, masked as
// a client sends it when masked is true.
func compressedFrame(masked bool, text string) []byte {
	var d deflater
	payload, err := d.compress(nil, []byte(text))
	if err != nil {
		panic(err) // test helper: the pooled compressor cannot fail on a slice
	}
	return appendFrame(nil, opText, true, true, payload, masked, coreTestKey)
}

var deflateClientCfg = parserConfig{readLimit: 1 << 20, deflate: &deflateParams{}}

// TestDeflateRFC7692Examples decodes the examples of RFC 7692 §7.2.3.
func TestDeflateRFC7692Examples(t *testing.T) {
	hello := []frameEvent{msgEvent(TextMessage, "Hello")}
	tests := []struct {
		name     string
		takeover bool
		input    []byte
		want     []frameEvent
	}{
		{"single frame", false, []byte{0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, hello},
		{"fragmented", false, []byte{0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00}, hello},
		{"context takeover", true, []byte{0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00},
			[]frameEvent{msgEvent(TextMessage, "Hello"), msgEvent(TextMessage, "Hello")}},
		{"stored block", false, []byte{0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}, hello},
		{"bfinal", false, []byte{0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}, hello},
		{"two blocks", false, []byte{0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00}, hello},
		{"empty", false, []byte{0xc1, 0x01, 0x00}, []frameEvent{msgEvent(TextMessage, "")}},
		{"empty payload", false, []byte{0xc2, 0x00}, []frameEvent{msgEvent(BinaryMessage, "")}},
		{"uncompressed message", false, []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}, hello},
	}
	for _, tc := range tests {
		cfg := deflateClientCfg
		cfg.contextTakeover = tc.takeover
		for _, sp := range feedSplits() {
			t.Run(tc.name+"/"+sp.name, func(t *testing.T) {
				events, err := runParser(cfg, tc.input, sp.split)
				checkParse(t, events, err, tc.want, 0)
			})
		}
	}
}

// TestDeflateCompressHello checks our compressor against RFC 7692: at
// BestSpeed compress/flate stores inputs of up to 16 bytes, which gives
// exactly the "DEFLATE block with no compression" example of §7.2.3.3.
func TestDeflateCompressHello(t *testing.T) {
	var d deflater
	got, err := d.compress([]byte("prefix"), []byte("Hello"))
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte("prefix"), 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00)
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
	got, err = d.compress(nil, nil)
	if err != nil || !bytes.Equal(got, []byte{0x00}) {
		t.Fatalf("empty: got % x, %v, want 00", got, err)
	}
}

// TestDeflateContextTakeover checks, as RFC 7692 §7.2.3.2 shows for
// "Hello", that a context-keeping compressor sends a repeated message as
// back-references, and that only a context-keeping parser decodes it.
func TestDeflateContextTakeover(t *testing.T) {
	d := newDeflater(true)
	defer d.release()
	text := randomText(rand.New(rand.NewPCG(7, 8)), 300) // ≥ 128 B: BestSpeed matches nothing below
	first, err := d.compress(nil, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	second, err := d.compress(nil, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(second) >= len(first) {
		t.Fatalf("got second message %d bytes (% x), want fewer than the first's %d", len(second), second, len(first))
	}
	input := appendFrame(appendFrame(nil, opText, true, true, first, false, coreTestKey), opText, true, true, second, false, coreTestKey)
	cfg := deflateClientCfg
	cfg.contextTakeover = true
	events, err := runParser(cfg, input, feedWhole)
	checkParse(t, events, err, []frameEvent{msgEvent(TextMessage, text), msgEvent(TextMessage, text)}, 0)
	cfg.contextTakeover = false
	_, err = runParser(cfg, input, feedWhole)
	if err == nil {
		t.Fatal("got no error decoding a context-takeover message without the context, want one")
	}
}

// TestDeflateRoundTrip compresses random messages and decodes them through
// the parser, with and without context takeover, fragmented or not.
func TestDeflateRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, takeover := range []bool{false, true} {
		d := newDeflater(takeover)
		var input []byte
		var want []frameEvent
		for i := range 48 {
			n := []int{0, 1, 100, 5000, 40000, 100000, 120000, 300000}[i%8]
			data := randomText(rng, n)
			typ := TextMessage
			if i%8 >= 6 { // hardly compressible: streamed when fragmented or split
				typ = MessageType(1 + i%2)
				data = randomLetters(rng, n)
				if typ == BinaryMessage {
					data = randomBytes(rng, n)
				}
			}
			payload, err := d.compress(nil, []byte(data))
			if err != nil {
				t.Fatal(err)
			}
			frags := 1 + rng.IntN(3)
			for f := range frags {
				part := payload[f*len(payload)/frags : (f+1)*len(payload)/frags]
				op := opContinuation
				if f == 0 {
					op = opcode(typ)
				}
				input = appendFrame(input, op, f == frags-1, f == 0, part, true, coreTestKey)
			}
			want = append(want, msgEvent(typ, data))
		}
		d.release()
		cfg := deflateServerCfg
		cfg.contextTakeover = takeover
		for _, sp := range feedSplits()[:4] {
			events, err := runParser(cfg, input, sp.split)
			if err != nil || len(events) != len(want) {
				t.Fatalf("takeover=%v %s: got %d events, %v; want %d", takeover, sp.name, len(events), err, len(want))
			}
			for i := range want {
				if events[i] != want[i] {
					t.Fatalf("takeover=%v %s: message %d differs: got %v, want %v", takeover, sp.name, i, events[i], want[i])
				}
			}
		}
	}
}

// randomText returns n bytes of compressible UTF-8 with multi-byte runes.
func randomText(rng *rand.Rand, n int) string {
	words := []string{"hello ", "κόσμε ", "world ", "日本 ", "🙂 ", "gateway "}
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[rng.IntN(len(words))])
	}
	return b.String()
}

// randomLetters returns n random ASCII letters: text that compresses little.
func randomLetters(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(rng.IntN(26))
	}
	return string(b)
}

// randomBytes returns n random bytes: data that does not compress.
func randomBytes(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return string(b)
}

// TestDeflateStreamFailsFast checks that a large compressed message is
// inflated as it arrives: invalid text and a bomb fail before the message
// ends, with no final frame ever sent.
func TestDeflateStreamFailsFast(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	var d deflater
	text := randomLetters(rng, 100000) + "\xff" + randomLetters(rng, 200000)
	badText, _ := d.compress(nil, []byte(text))
	bomb, _ := d.compress(nil, make([]byte, 256<<20))
	tests := []struct {
		name    string
		op      opcode
		payload []byte
		limit   int64
		status  StatusCode
	}{
		{"invalid utf8", opText, badText, 1 << 20, StatusInvalidFramePayloadData},
		{"bomb", opBinary, bomb, 1 << 20, StatusMessageTooBig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.payload) < 2*inflateStreamThreshold {
				t.Fatalf("got %d compressed bytes, want more than %d to exercise streaming", len(tc.payload), 2*inflateStreamThreshold)
			}
			// Every frame but the last, in 4 KiB frames, never FIN.
			var input []byte
			for i := 0; i < len(tc.payload)-4096; i += 4096 {
				op := opContinuation
				if i == 0 {
					op = tc.op
				}
				input = appendFrame(input, op, false, i == 0, tc.payload[i:i+4096], true, coreTestKey)
			}
			cfg := parserConfig{server: true, readLimit: tc.limit, deflate: &deflateParams{}}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := runParser(cfg, input, randomSplit(1))
			runtime.ReadMemStats(&after)
			if got := CloseStatus(err); got != tc.status {
				t.Fatalf("got %v, want status %d before the last frame", err, tc.status)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Fatalf("got %d bytes allocated, want ≤ 16 MiB", alloc)
			}
		})
	}
}

// TestDeflateStreamRelease checks that releasing a parser in the middle of
// a streamed message ends the inflate coroutine.
func TestDeflateStreamRelease(t *testing.T) {
	var d deflater
	payload, _ := d.compress(nil, []byte(randomBytes(rand.New(rand.NewPCG(15, 16)), 100000)))
	input := appendFrame(nil, opBinary, true, true, payload, true, coreTestKey)
	input = input[:len(input)-1000] // the message never completes
	before := runtime.NumGoroutine()
	for range 20 {
		var p parser
		p.init(deflateServerCfg)
		in := bytes.Clone(input) // feed unmasks in place
		if err := p.feed(in[:len(in)/2], &recordSink{}); err != nil {
			t.Fatal(err)
		}
		if err := p.feed(in[len(in)/2:], &recordSink{}); err != nil {
			t.Fatal(err)
		}
		if p.stream() == nil {
			t.Fatal("got no inflate stream for a 100 KB message split in two")
		}
		p.release()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := runtime.NumGoroutine(); got > before {
		t.Fatalf("got %d goroutines after release, want ≤ %d", got, before)
	}
}

// TestDeflateErrors checks compressed messages that must fail.
func TestDeflateErrors(t *testing.T) {
	var d deflater
	badText, _ := d.compress(nil, []byte("ok \xff not utf8"))
	truncText, _ := d.compress(nil, []byte("ends inside a rune \xe2\x82"))
	binary, _ := d.compress(nil, []byte("\xff binary is not checked"))
	bomb, _ := d.compress(nil, make([]byte, 10<<20))
	tests := []struct {
		name   string
		cfg    parserConfig
		input  []byte
		status StatusCode
		want   []frameEvent
	}{
		{"invalid utf8", deflateServerCfg, appendFrame(nil, opText, true, true, badText, true, coreTestKey), 1007, nil},
		{"truncated utf8", deflateServerCfg, appendFrame(nil, opText, true, true, truncText, true, coreTestKey), 1007, nil},
		{"binary", deflateServerCfg, appendFrame(nil, opBinary, true, true, binary, true, coreTestKey), 0,
			[]frameEvent{msgEvent(BinaryMessage, "\xff binary is not checked")}},
		{"corrupt", deflateServerCfg, appendFrame(nil, opBinary, true, true, []byte{0xff, 0xff, 0xff}, true, coreTestKey), 1007, nil},
		{"truncated stream", deflateServerCfg, appendFrame(nil, opBinary, true, true, badText[:len(badText)/2], true, coreTestKey), 1007, nil},
		{"zip bomb", parserConfig{server: true, readLimit: 1 << 20, deflate: &deflateParams{}},
			appendFrame(nil, opBinary, true, true, bomb, true, coreTestKey), 1009, nil},
		{"compressed over limit", parserConfig{server: true, readLimit: 100, deflate: &deflateParams{}},
			appendFrame(nil, opBinary, true, true, make([]byte, 2000), true, coreTestKey), 1009, nil},
	}
	for _, tc := range tests {
		for _, sp := range feedSplits()[:3] {
			t.Run(tc.name+"/"+sp.name, func(t *testing.T) {
				events, err := runParser(tc.cfg, tc.input, sp.split)
				checkParse(t, events, err, tc.want, tc.status)
			})
		}
	}
}

// TestDeflateZipBombMemory checks that inflating a bomb stops at the limit
// instead of expanding it: memory allocated stays near the limit, far below
// the 64 MiB the bomb would expand to.
func TestDeflateZipBombMemory(t *testing.T) {
	var d deflater
	bomb, _ := d.compress(nil, make([]byte, 64<<20))
	input := appendFrame(nil, opBinary, true, true, bomb, false, coreTestKey)
	cfg := parserConfig{readLimit: 1 << 20, deflate: &deflateParams{}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := runParser(cfg, input, feedWhole)
	runtime.ReadMemStats(&after)
	if CloseStatus(err) != StatusMessageTooBig {
		t.Fatalf("got %v, want 1009", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Fatalf("got %d bytes allocated, want ≤ 8 MiB for a 1 MiB limit", alloc)
	}
}

// TestDeflateMemoryCost measures what a flate writer and reader cost, the
// figures quoted in deflate.go for context takeover.
func TestDeflateMemoryCost(t *testing.T) {
	writer := allocatedBytes(func() { _, _ = flate.NewWriter(io.Discard, deflateLevel) })
	reader := allocatedBytes(func() {
		r := flate.NewReader(bytes.NewReader([]byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x00, 0xff, 0xff}))
		_, _ = io.Copy(io.Discard, r)
	})
	t.Logf("flate writer (level %d): %d bytes; reader: %d bytes; context-takeover dictionary: %d bytes",
		deflateLevel, writer, reader, maxWindow)
	if writer < 512<<10 || writer > 2<<20 {
		t.Errorf("got writer %d bytes, want 0.5-2 MiB as documented", writer)
	}
	if reader < 32<<10 || reader > 128<<10 {
		t.Errorf("got reader %d bytes, want 32-128 KiB as documented", reader)
	}
}

// allocatedBytes returns the bytes f allocates.
func allocatedBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDeflatePooledNoAlloc checks that once pools are warm, compressing and
// inflating a message without context takeover allocates almost nothing.
func TestDeflatePooledNoAlloc(t *testing.T) {
	if raceDetectorOn() {
		t.Skip("allocation counts are not stable under -race")
	}
	src := []byte(strings.Repeat("hello gateway ", 20))
	var d deflater
	dst := make([]byte, 0, 1024)
	comp, _ := d.compress(nil, src)
	frame := appendFrame(nil, opText, true, true, comp, false, coreTestKey)
	var p parser
	p.init(deflateClientCfg)
	defer p.release()
	buf := make([]byte, len(frame))
	sink := &funcSink{}
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = d.compress(dst[:0], src)
		copy(buf, frame)
		if err := p.feed(buf, sink); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Fatalf("got %v allocs per compress+inflate, want 0", allocs)
	}
}

// raceDetectorOn reports whether the test binary was built with -race, under
// which sync.Pool drops items at random and allocation counts are not exact.
func raceDetectorOn() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// BenchmarkDeflateWriterReaderAlloc reports the bytes a context-keeping
// connection pins: one writer and one dictionary.
func BenchmarkDeflateWriterReaderAlloc(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		w, _ := flate.NewWriter(io.Discard, deflateLevel)
		r := flate.NewReader(bytes.NewReader(nil))
		_, _ = w, r
	}
}

// FuzzInflateStream checks that inflating a message as it arrives, in any
// pieces, gives exactly what inflating it whole gives: output or error.
func FuzzInflateStream(f *testing.F) {
	var d deflater
	for _, s := range []string{"Hello", strings.Repeat("κόσμε ", 500), "bad \xff text", randomLetters(rand.New(rand.NewPCG(1, 1)), 3000)} {
		c, _ := d.compress(nil, []byte(s))
		f.Add(c, true, uint8(7))
	}
	f.Add([]byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, false, uint8(1))
	f.Add([]byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}, true, uint8(3))
	f.Add([]byte{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}, true, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, text bool, piece uint8) {
		if len(data) == 0 {
			return // the parser only streams messages of inflateStreamThreshold bytes or more
		}
		const limit = 1 << 16
		whole, werr := inflateMessage(data, nil, limit, text)
		st := newInflateStream(nil, limit, text)
		defer st.release()
		var serr error
		for rest := data; len(rest) > 0 && serr == nil; {
			n := min(len(rest), 1+int(piece)%32)
			serr = st.write(rest[:n])
			rest = rest[n:]
		}
		streamed, ferr := st.finish()
		if serr == nil {
			serr = ferr
		}
		if CloseStatus(werr) != CloseStatus(serr) {
			t.Fatalf("got streamed error %v, whole error %v", serr, werr)
		}
		if werr == nil && !bytes.Equal(*whole, *streamed) {
			t.Fatalf("got streamed output %d bytes, whole %d bytes, different", len(*streamed), len(*whole))
		}
		if werr == nil {
			putMsgBuf(whole)
			putMsgBuf(streamed)
		}
	})
}

// BenchmarkDeflateMessage measures what compression costs per message: a
// 1 KiB JSON-like push compressed (pooled writer, no context takeover, as
// by default) and inflated again.
func BenchmarkDeflateMessage(b *testing.B) {
	var msg []byte
	for i := 0; len(msg) < 1<<10; i++ {
		msg = fmt.Appendf(msg, `{"id":%d,"topic":"prices.eur","price":%d.%02d,"ts":17000000%02d},`, i, 100+i*7, i*13%100, i)
	}
	b.Run("compress", func(b *testing.B) {
		var d deflater
		out := make([]byte, 0, len(msg))
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			z, err := d.compress(out[:0], msg)
			if err != nil {
				b.Fatal(err)
			}
			out = z
		}
		b.ReportMetric(float64(len(out))/float64(len(msg)), "ratio")
	})
	b.Run("inflate", func(b *testing.B) {
		var d deflater
		z, err := d.compress(nil, msg)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			out, err := inflateMessage(z, nil, 1<<20, true)
			if err != nil {
				b.Fatal(err)
			}
			putMsgBuf(out)
		}
	})
}
