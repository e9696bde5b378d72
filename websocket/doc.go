// Package websocket is an RFC 6455 WebSocket engine, with permessage-deflate
// (RFC 7692), built for servers that hold very many mostly idle
// connections: on Linux an idle connection costs no goroutine and about
// 300 bytes of heap (see Memory per connection).
//
// # Serving
//
// A Server upgrades HTTP requests and delivers each connection's events to
// a Handler:
//
//	srv := websocket.NewServer(websocket.Config{}, websocket.Handler{
//		OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
//			_ = c.WriteMessage(typ, data)
//		},
//	})
//	http.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
//		_, _ = srv.Accept(w, r, nil) // on error the HTTP answer is written
//	})
//	...
//	srv.Shutdown(ctx, websocket.StatusGoingAway, "restarting")
//
// http.Server.Shutdown does not close hijacked connections: call
// Server.Shutdown as well.
//
// Clients come in two kinds. A Dialer opens event-mode connections that
// share one reactor and executor, like a Server's (load generators,
// bridges: thousands per process). The package function Dial opens one
// pull-mode connection read with Conn.Read, the simple choice for a
// program with a few connections.
//
// # Two I/O modes
//
// Reactor mode (Linux, plain TCP): Config.Pollers goroutines each wait in
// epoll_wait on their share of the connections. A poller reads into one
// 64 KiB buffer shared by all its connections; the parser copies only
// frames split across reads, so an idle connection holds no buffer, no
// timer and no goroutine. Idle and close timeouts are checked by a sweep
// about once a second. Writes go straight from the writing goroutine to
// the socket; only what the kernel refuses is queued, and the poller sends
// it when the socket is writable. When one connection's callbacks run back
// to back (pipelined requests), the replies they write are queued and the
// poller sends them together in one writev while the callbacks go on, so a
// slow callback never holds back the replies written before it.
//
// Blocking mode: one reader goroutine per connection, and a writer
// goroutine only while data is queued. It is used for TLS connections
// (wss://, or a TLS http.Server), on platforms without epoll, for pull-mode
// clients, and everywhere with Config.Mode = ModeBlocking. The API and its
// guarantees are the same in both modes.
//
// # Lifecycle
//
// Accept (or Dialer.Dial) returns a running connection. Its callbacks run
// in this order: OnOpen, OnMessage for each message, then OnClose exactly
// once, last. A server sends the 101 only once OnOpen has returned, so a
// client that has finished its handshake is already whatever OnOpen made
// it (registered for pushes, say); output written before that waits and
// follows the 101. Conn.Close starts the closing handshake: our close frame is
// sent, writes fail from then on, and the TCP connection is closed when
// the peer answers or after Config.CloseTimeout, even while the
// connection's reading is paused for a slow handler. When the peer starts
// the handshake its close frame is answered after OnMessage has run for
// every message that came before it, so replies to those messages are
// still sent. The same holds when the peer breaks the protocol: reading
// stops at the bad frame, and the close frame that fails the connection
// (1002, 1007, 1009) follows the replies to the messages received before
// it (at once when none is pending; in pull mode when Read reaches it;
// Config.CloseTimeout bounds the wait either way). Conn.CloseNow drops the
// TCP connection at once. Conn.Done is
// closed when everything is over, after OnClose returned.
//
// Config.IdleTimeout closes a connection that sent nothing for that long
// (any frame counts, pongs included, so a peer that answers the pings you
// send with Conn.Ping stays) with Config.IdleCloseCode. Conn.Activity
// tells when the peer last sent something and when a frame last went out,
// so that a heartbeat can skip the ping of a connection written to
// recently while the peer still has time to answer one.
//
// Shutdown closes every connection with its code and waits for them (or
// its ctx). From the moment it begins, Accept answers 503; a handshake
// that had already passed that check and finishes during Shutdown gets the
// same close frame right after its 101, so no client ever sees its
// connection dropped without a code.
//
// # Concurrency
//
// Every Conn method may be called from any goroutine at any time,
// including from callbacks, concurrently. Callbacks run on the executor (up
// to GOMAXPROCS goroutines, more only while callbacks block, never more than
// Config.Workers; started on demand, exiting when idle), never on an I/O
// goroutine, except a server's OnOpen, which runs on the goroutine that
// called Accept; the callbacks of one connection never run concurrently. A
// slow callback holds one worker and its own connection only: when
// Config.InboxLimit messages wait for it, the engine stops reading that
// connection (TCP then pushes back on the peer) until half of them are
// handled. The data passed to OnMessage is valid until it returns.
//
// WriteMessage, WritePrepared, Ping and Close never block. When more than
// Config.WriteQueueLimit bytes or Config.WriteQueueMessages frames wait for
// a slow reader, WriteMessage returns ErrWriteQueueFull and sends nothing:
// the caller decides whether to drop the message or the connection.
// Write(ctx) waits for room instead. Read and NextReader are for
// pull-mode connections only. A Batch writes one PreparedMessage to many
// reactor-mode connections with one system call per 64 of them
// (io_uring, where Linux allows it), for broadcasts.
//
// A panic in a callback is recovered, as net/http recovers a handler's, and
// closes that connection with 1011. It is not lost: Config.Logger gets it
// with its value and stack, Config.OnPanic is called with them, and
// Server.Panics (Dialer.Panics) counts it.
//
// # Streaming large messages
//
// Read and OnMessage deliver whole messages, bounded by Config.ReadLimit.
// For messages of any size in constant memory, pull-mode connections
// (package Dial, and servers made by NewPullServer, which run in blocking
// mode) offer Conn.NextReader: an io.Reader per message that yields its
// pieces as they are read from the socket (uncompressed messages; a
// compressed one is inflated whole under ReadLimit first). Conn.NextWriter
// gives an io.WriteCloser per outgoing message, on any connection: each
// Write goes out as one frame, waiting for room in the write queue. 1 GiB
// echoed through both costs the process under 50 MiB of RSS
// (TestStreamEchoRSS, WSGATE_STREAM_GIB=1).
//
// Reactor-mode (and other Handler) servers do not stream what they read:
// a connection's messages are parsed by a poller shared with thousands of
// others, and a callback that blocked on the rest of a message would hold
// a worker for as long as the peer takes to send it. They offer OnMessage
// with whole messages up to Config.ReadLimit (raise it for large
// uploads; the message is held once, in a pooled buffer, while OnMessage
// runs) and NextWriter for large replies. A service whose clients upload
// files larger than it wants to hold serves that endpoint with
// NewPullServer.
//
// # Memory per connection
//
// Reactor mode, idle: the Conn (192 bytes, kept in that allocation class,
// whose objects start on cache-line boundaries, by TestConnSize) and a
// table slot, about 200 bytes of live heap (TestReactorIdleConnections),
// no goroutine. The negotiated subprotocol is a one-byte index into the
// server's table of the ones it has seen; state only some connections need
// (a close in progress, a write queue, a greeting written from OnOpen
// while the 101 was held) lives in a side object that an idle connection
// drops again (within a second). Buffers exist only while a
// message is split across reads or the kernel refuses output, and come
// from one size-class pool shared by the parser, the inbox and the write
// path. Blocking mode adds a reader goroutine (its stack and a 4 KiB read
// buffer).
//
// Whole-process cost measured by bench/engineidle (examples/echo with
// 18,000 idle connections after one echo each, Go 1.26, linux/amd64, 2
// CPUs; medians of several rounds, which vary by about ±0.15 KiB):
//
//	mode                    RSS/conn   heap/conn  goroutines/conn  server CPU/echo
//	reactor                 0.9 KiB    0.5 KiB    0                0.8 µs
//	blocking                10.1 KiB   7 KiB      1                1.2 µs
//	gorilla/websocket hub   21 KiB     16 KiB     2                3.4-4.4 µs
//
// # Compression cost
//
// permessage-deflate is off by default (Config.Compression) because it
// costs CPU on every message: compressing a 1 KiB JSON message takes about
// 10 µs and inflating it about 6 µs (BenchmarkDeflateMessage, ratio 0.24),
// an order of magnitude more than the engine spends on an uncompressed
// echo. Memory is spent only while a message is compressed or
// decompressed: both sides are asked for no_context_takeover, and the
// flate writers (about 1.2 MB each) and readers (about 48 KiB) are pooled.
// Config.CompressionContextTakeover keeps a writer per connection for its
// whole life (plus a 32 KiB window per direction): better ratios for
// streams of similar messages, at a cost that rules it out for large
// numbers of connections. Messages shorter than Config.CompressionThreshold
// are never compressed. A PreparedMessage is compressed once for all the
// connections it is sent to, which makes compressed broadcasts cheap.
//
// Every window-size parameter is honoured. A server grants any
// server_max_window_bits (8-15) a client asks for; a client offers
// client_max_window_bits and obeys the server's answer. compress/flate
// always looks 32 KiB back, so for a smaller window our side compresses
// each message in pieces of that size with a fresh writer state (no
// back-reference crosses a piece) and without context takeover, and such a
// connection compresses PreparedMessages itself. On JSON-like text the
// ratio (compressed/original, TestDeflateWindowRatio) goes from 0.22 at 32
// KiB to 0.24 at 4 KiB, 0.31 at 1 KiB and 0.53 at 256 bytes, where
// Huffman-only coding (no back-references at all) gives 0.57. Any window
// the peer's compressor uses is inflated.
//
// # Security
//
// Accept rejects a request whose Origin header names another host than the
// request's (403), unless AcceptOptions.CheckOrigin decides otherwise:
// browsers send cookies with cross-site WebSocket requests, so accepting
// every origin exposes authenticated sessions to any web page. Messages
// larger than Config.ReadLimit (16 MiB by default, measured after
// decompression, so compression bombs are cut off as they inflate) close
// the connection with 1009. Every queue is bounded: Config.WriteQueueLimit
// bytes and Config.WriteQueueMessages frames per connection for output,
// Config.InboxLimit messages for input. Set Config.IdleTimeout to drop
// peers that went silent. Client masking keys come from a ChaCha8 source
// seeded by the OS (RFC 6455 §10.3).
//
// # Close codes
//
// OnClose, and Read after the end of a pull-mode connection, report a
// *CloseError when a closing handshake took place: the close frame that
// started it, ours or the peer's, so both ends see the same code.
// Otherwise they report the I/O error (CloseStatus returns -1). The engine
// itself sends:
//
//	1000  answering an empty close frame
//	1001  Config.IdleTimeout expired ("idle timeout"; Config.IdleCloseCode
//	      and IdleCloseReason choose another code and reason)
//	1002  protocol violation by the peer
//	1007  invalid UTF-8 in a text message or close reason
//	1009  message larger than Config.ReadLimit
//	1011  a callback panicked, or a dialed connection could not be
//	      started (the reactor refused the socket; a server answers such
//	      a handshake with HTTP 503 instead of its 101)
//
// Any other code comes from Close or Shutdown. 1005, 1006 and 1015 are
// never sent: a Close with one of them sends an empty close frame.
package websocket
