package websocket

// deflateParams is the negotiated permessage-deflate configuration (RFC 7692 §7).
type deflateParams struct {
	serverNoContextTakeover, clientNoContextTakeover bool
	serverMaxWindowBits, clientMaxWindowBits         int
}

// compressionConfig is what this endpoint is willing to negotiate.
type compressionConfig struct {
	enabled, contextTakeover bool
}

func negotiateDeflate(values []string, cfg compressionConfig) (*deflateParams, string, error) {
	return nil, "", nil
}

func deflateOffer(cfg compressionConfig) string { return "" }

func acceptDeflateResponse(values []string, cfg compressionConfig) (*deflateParams, error) {
	return nil, nil
}

// deflater compresses message payloads. (work in progress)
type deflater struct {
	contextTakeover bool
}

func (d *deflater) compress(dst, src []byte) ([]byte, error) { return dst, nil }
