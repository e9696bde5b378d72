package websocket

import (
	"strings"
	"testing"
)

func TestNegotiateDeflate(t *testing.T) {
	const both = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	off := compressionConfig{}
	on := compressionConfig{enabled: true}
	ctx := compressionConfig{enabled: true, contextTakeover: true}
	tests := []struct {
		name   string
		values []string
		cfg    compressionConfig
		resp   string // "" = declined
		want   deflateParams
		err    bool
	}{
		{"disabled", []string{"permessage-deflate"}, off, "", deflateParams{}, false},
		{"none", nil, on, "", deflateParams{}, false},
		{"plain", []string{"permessage-deflate"}, on, both, deflateParams{true, true, 15, 15}, false},
		{"chrome", []string{"permessage-deflate; client_max_window_bits"}, on, both, deflateParams{true, true, 15, 15}, false},
		{"client bits value", []string{"permessage-deflate; client_max_window_bits=10"}, on, both, deflateParams{true, true, 15, 15}, false},
		{"server bits 15", []string{"permessage-deflate; server_max_window_bits=15"}, on, both + "; server_max_window_bits=15", deflateParams{true, true, 15, 15}, false},
		{"server bits quoted", []string{`permessage-deflate; server_max_window_bits="15"`}, on, both + "; server_max_window_bits=15", deflateParams{true, true, 15, 15}, false},
		{"server bits 10", []string{"permessage-deflate; server_max_window_bits=10"}, on, both + "; server_max_window_bits=10", deflateParams{true, true, 10, 15}, false},
		{"server bits 8", []string{"permessage-deflate; server_max_window_bits=8; client_max_window_bits"}, on, both + "; server_max_window_bits=8", deflateParams{true, true, 8, 15}, false},
		{"server bits 9 takeover", []string{"permessage-deflate; server_max_window_bits=9"}, ctx, "permessage-deflate; server_max_window_bits=9", deflateParams{false, false, 9, 15}, false},
		{"first offer wins", []string{"permessage-deflate; server_max_window_bits=10, permessage-deflate"}, on, both + "; server_max_window_bits=10", deflateParams{true, true, 10, 15}, false},
		{"fallback offer", []string{"permessage-deflate; server_max_window_bits=7, permessage-deflate"}, on, both, deflateParams{true, true, 15, 15}, false},
		{"fallback across headers", []string{"permessage-deflate; server_max_window_bits=16", "x-other, permessage-deflate; client_max_window_bits"}, on, both, deflateParams{true, true, 15, 15}, false},
		{"unknown param", []string{"permessage-deflate; foo"}, on, "", deflateParams{}, false},
		{"duplicate param", []string{"permessage-deflate; client_no_context_takeover; client_no_context_takeover"}, on, "", deflateParams{}, false},
		{"value on flag", []string{"permessage-deflate; server_no_context_takeover=1"}, on, "", deflateParams{}, false},
		{"bits missing value", []string{"permessage-deflate; server_max_window_bits"}, on, "", deflateParams{}, false},
		{"bits leading zero", []string{"permessage-deflate; server_max_window_bits=015"}, on, "", deflateParams{}, false},
		{"bits 16", []string{"permessage-deflate; client_max_window_bits=16"}, on, "", deflateParams{}, false},
		{"bits 7", []string{"permessage-deflate; client_max_window_bits=7"}, on, "", deflateParams{}, false},
		{"other extension only", []string{"x-webkit-deflate-frame"}, on, "", deflateParams{}, false},
		{"case and spaces", []string{"  Permessage-Deflate ;Client_Max_Window_Bits ,"}, on, both, deflateParams{true, true, 15, 15}, false},
		{"takeover", []string{"permessage-deflate; client_max_window_bits"}, ctx, "permessage-deflate", deflateParams{false, false, 15, 15}, false},
		{"takeover client asks none", []string{"permessage-deflate; client_no_context_takeover"}, ctx, "permessage-deflate; client_no_context_takeover", deflateParams{false, true, 15, 15}, false},
		{"takeover server asked none", []string{"permessage-deflate; server_no_context_takeover"}, ctx, "permessage-deflate; server_no_context_takeover", deflateParams{true, false, 15, 15}, false},
		{"malformed", []string{"permessage-deflate; =x"}, on, "", deflateParams{}, true},
		{"malformed quote", []string{`permessage-deflate; a="x`}, on, "", deflateParams{}, true},
		{"malformed separator", []string{"permessage-deflate x"}, on, "", deflateParams{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dp, resp, err := negotiateDeflate(tc.values, tc.cfg)
			if (err != nil) != tc.err {
				t.Fatalf("got error %v, want error %v", err, tc.err)
			}
			if resp != tc.resp {
				t.Fatalf("got response %q, want %q", resp, tc.resp)
			}
			if (dp != nil) != (tc.resp != "") {
				t.Fatalf("got params %v with response %q", dp, resp)
			}
			if dp != nil && *dp != tc.want {
				t.Fatalf("got params %+v, want %+v", *dp, tc.want)
			}
		})
	}
}

func TestAcceptDeflateResponse(t *testing.T) {
	on := compressionConfig{enabled: true}
	ctx := compressionConfig{enabled: true, contextTakeover: true}
	tests := []struct {
		name   string
		values []string
		cfg    compressionConfig
		want   *deflateParams
		err    bool
	}{
		{"none", nil, on, nil, false},
		{"both", []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, on, &deflateParams{true, true, 15, 15}, false},
		{"server only", []string{"permessage-deflate; server_no_context_takeover"}, on, &deflateParams{true, true, 15, 15}, false},
		{"server window", []string{"permessage-deflate; server_no_context_takeover; server_max_window_bits=10"}, on, &deflateParams{true, true, 10, 15}, false},
		{"missing server_no_context_takeover", []string{"permessage-deflate"}, on, nil, true},
		{"client bits", []string{"permessage-deflate; server_no_context_takeover; client_max_window_bits=9"}, on, &deflateParams{true, true, 15, 9}, false},
		{"client bits 8 takeover", []string{"permessage-deflate; client_max_window_bits=8"}, ctx, &deflateParams{false, false, 15, 8}, false},
		{"client bits without value", []string{"permessage-deflate; server_no_context_takeover; client_max_window_bits"}, on, nil, true},
		{"client bits 16", []string{"permessage-deflate; server_no_context_takeover; client_max_window_bits=16"}, on, nil, true},
		{"unknown param", []string{"permessage-deflate; server_no_context_takeover; foo"}, on, nil, true},
		{"duplicate", []string{"permessage-deflate; server_no_context_takeover; server_no_context_takeover"}, on, nil, true},
		{"two extensions", []string{"permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover"}, on, nil, true},
		{"other extension", []string{"x-foo"}, on, nil, true},
		{"not offered", []string{"permessage-deflate"}, compressionConfig{}, nil, true},
		{"malformed", []string{"permessage-deflate;"}, on, nil, true},
		{"takeover plain", []string{"permessage-deflate"}, ctx, &deflateParams{false, false, 15, 15}, false},
		{"takeover server declines context", []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, ctx, &deflateParams{true, true, 15, 15}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dp, err := acceptDeflateResponse(tc.values, tc.cfg)
			if (err != nil) != tc.err {
				t.Fatalf("got error %v, want error %v", err, tc.err)
			}
			if (dp == nil) != (tc.want == nil) || (dp != nil && *dp != *tc.want) {
				t.Fatalf("got %+v, want %+v", dp, tc.want)
			}
		})
	}
}

// TestDeflateOfferAccepted checks that our client's offer is accepted by our
// server and that the client accepts the server's answer, in every mode.
func TestDeflateOfferAccepted(t *testing.T) {
	for _, client := range []bool{false, true} {
		for _, server := range []bool{false, true} {
			ccfg := compressionConfig{enabled: true, contextTakeover: client}
			scfg := compressionConfig{enabled: true, contextTakeover: server}
			sp, resp, err := negotiateDeflate([]string{deflateOffer(ccfg)}, scfg)
			if err != nil || sp == nil {
				t.Fatalf("client takeover %v, server %v: server declined: %v", client, server, err)
			}
			cp, err := acceptDeflateResponse([]string{resp}, ccfg)
			if err != nil || cp == nil {
				t.Fatalf("client takeover %v, server %v: client rejected %q: %v", client, server, resp, err)
			}
			sc, sd := sp.contextTakeover(true)
			cc, cd := cp.contextTakeover(false)
			if sc != cd || cc != sd {
				t.Fatalf("client takeover %v, server %v: server compress/decompress %v/%v, client %v/%v", client, server, sc, sd, cc, cd)
			}
			if want := client && server; sc != want || cc != want {
				t.Fatalf("client takeover %v, server %v: got context takeover %v/%v, want %v", client, server, sc, cc, want)
			}
		}
	}
	if got := deflateOffer(compressionConfig{}); got != "" {
		t.Fatalf("got offer %q with compression off, want none", got)
	}
}

// FuzzNegotiateDeflate checks negotiation never panics, that every
// response the server builds is accepted by a client that offered it
// context takeover, and that both ends then agree on who keeps context.
func FuzzNegotiateDeflate(f *testing.F) {
	for _, s := range []string{
		"permessage-deflate",
		"permessage-deflate; client_max_window_bits",
		"permessage-deflate; server_max_window_bits=10, permessage-deflate; server_no_context_takeover",
		`permessage-deflate; server_max_window_bits="15"; client_max_window_bits=9`,
		"x-webkit-deflate-frame, permessage-deflate; client_no_context_takeover",
		"permessage-deflate; foo=bar",
		`permessage-deflate; a="\"q\\"`,
		"permessage-deflate;;",
		"permessage-deflate\npermessage-deflate; server_no_context_takeover",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		values := strings.Split(header, "\n")
		for _, cfg := range []compressionConfig{{enabled: true}, {enabled: true, contextTakeover: true}} {
			dp, resp, err := negotiateDeflate(values, cfg)
			if err != nil || dp == nil {
				if resp != "" {
					t.Fatalf("got response %q without params", resp)
				}
				continue
			}
			if !cfg.contextTakeover && (!dp.serverNoContextTakeover || !dp.clientNoContextTakeover) {
				t.Fatalf("got context takeover %+v with it disabled", *dp)
			}
			cp, err := acceptDeflateResponse([]string{resp}, compressionConfig{enabled: true, contextTakeover: true})
			if err != nil || cp == nil {
				t.Fatalf("client rejected %q: %v", resp, err)
			}
			sc, sd := dp.contextTakeover(true)
			cc, cd := cp.contextTakeover(false)
			if sc != cd || sd != cc {
				t.Fatalf("%q: server compress/decompress takeover %v/%v, client %v/%v", resp, sc, sd, cc, cd)
			}
		}
		for _, cfg := range []compressionConfig{{}, {enabled: true}, {enabled: true, contextTakeover: true}} {
			dp, err := acceptDeflateResponse(values, cfg)
			if err == nil && dp != nil && (dp.serverMaxWindowBits < 8 || dp.serverMaxWindowBits > 15) {
				t.Fatalf("got window bits %d", dp.serverMaxWindowBits)
			}
		}
	})
}
