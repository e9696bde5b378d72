package websocket

// parserConfig configures a parser for one connection.
type parserConfig struct {
	server          bool           // expect masked frames (server) / unmasked (client)
	readLimit       int64          // max message size after decompression; ≤ 0 means 16 MiB
	deflate         *deflateParams // nil: permessage-deflate not negotiated (RSV1 → 1002)
	contextTakeover bool           // keep the inflate window across messages
}

// frameSink receives what the parser decodes, in wire order.
type frameSink interface {
	onMessage(typ MessageType, data []byte) error // whole message, decompressed, UTF-8 checked; data valid only during the call
	onPing(payload []byte) error
	onPong(payload []byte) error
	onClose(code StatusCode, reason string) error // already validated; 1005 when the payload is empty
}

// parser is an incremental RFC 6455 frame decoder. (work in progress)
type parser struct {
	cfg parserConfig
}

func (p *parser) init(cfg parserConfig) { p.cfg = cfg }

func (p *parser) feed(b []byte, s frameSink) error { return nil }

func (p *parser) release() {}
