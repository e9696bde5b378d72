package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/wire"
)

// pushRequest is the body of POST /api/v1/push.
type pushRequest struct {
	To     *pushTarget     `json:"to"`
	Action *uint32         `json:"action"`
	Data   *string         `json:"data"` // base64 (standard or URL alphabet)
	JSON   json.RawMessage `json:"json"` // a JSON value sent as is
}

type pushTarget struct {
	User  string   `json:"user"`
	Users []string `json:"users"`
	Topic string   `json:"topic"`
	Conn  string   `json:"conn"`
	All   bool     `json:"all"`
}

func (a *API) push(w http.ResponseWriter, r *http.Request) {
	st, _ := a.states.Get().(*pushState)
	if st == nil {
		st = new(pushState)
	}
	defer func() {
		st.req, st.fields = pushRequest{}, fastFields{} // keep nothing alive in the pool
		a.states.Put(st)                                // after the answer is written: it is built in st
	}()
	to, action, payload, err := a.decodePush(w, r, st)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := a.gw.Publish(r.Context(), to, action, payload)
	switch {
	case errors.Is(err, wsgate.ErrNotConnected):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, wsgate.ErrServerClosed):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, wsgate.ErrUnavailable):
		a.logger.Warn("push failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "wsgate: push failed: the broker is unavailable; nothing was delivered")
	case err != nil:
		a.logger.Error("push failed", "err", err)
		writeError(w, http.StatusInternalServerError, "wsgate: push failed")
	default:
		writeRaw(w, http.StatusOK, appendPushAnswer(st.answer[:0], to, res))
	}
}

// pushState is what one push request works in, kept for the next one: the
// body read whole, the fields of a body parseFast read and the answer.
// None of it outlives the request: the target's strings and the payload
// are copies.
type pushState struct {
	body   [maxPooledBody]byte
	req    pushRequest
	fields fastFields
	answer [96]byte
}

// appendPushAnswer appends the body of a successful push: "delivered" when
// it is known (not with a shared broker, whose nodes deliver after the
// call) and the sequence of a push to one user. The bytes are what
// encoding/json made of the map this used to be (keys sorted, a newline
// at the end), without the map, the encoder and their allocations on every
// push.
func appendPushAnswer(b []byte, to wsgate.Target, res wsgate.PushResult) []byte {
	b = append(b, '{')
	if res.Delivered >= 0 {
		b = append(b, `"delivered":`...)
		b = strconv.AppendInt(b, int64(res.Delivered), 10)
	}
	if to.User != "" {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, `"epoch":`...)
		b = strconv.AppendUint(b, res.Epoch, 10)
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, res.Seq, 10)
	}
	return append(b, "}\n"...)
}

// decodePush parses and validates a push body; its errors are the client's 400 message.
func (a *API) decodePush(w http.ResponseWriter, r *http.Request, st *pushState) (wsgate.Target, wire.Action, []byte, error) {
	req := &st.req
	*req = pushRequest{} // what the last request left
	if err := a.decodeBody(w, r, st, req); err != nil {
		return wsgate.Target{}, 0, nil, err
	}
	to, err := req.target()
	if err != nil {
		return wsgate.Target{}, 0, nil, err
	}
	if req.Action == nil {
		return wsgate.Target{}, 0, nil, errors.New(`wsgate: "action" is required`)
	}
	action := wire.Action(*req.Action)
	if !action.IsApp() {
		return wsgate.Target{}, 0, nil, fmt.Errorf("wsgate: action %d is outside the application range 100..2147483647", *req.Action)
	}
	payload, err := req.payload()
	if err != nil {
		return wsgate.Target{}, 0, nil, err
	}
	if len(payload) > a.max {
		return wsgate.Target{}, 0, nil, fmt.Errorf("wsgate: payload of %d bytes is larger than %d", len(payload), a.max)
	}
	return to, action, payload, nil
}

// decodeBody decodes the JSON object of r's body into req: unknown fields
// and anything after the object are errors. A body of a declared length
// that fits st is read whole and, when it has the usual shape, parsed by
// parseFast; any other body is decoded by encoding/json, from the bytes
// already read and then the rest of the body, so that it sees exactly
// the stream it always did.
func (a *API) decodeBody(w http.ResponseWriter, r *http.Request, st *pushState, req *pushRequest) error {
	if r.ContentLength < 0 || r.ContentLength > maxPooledBody {
		return a.decodeJSON(w, r, r.Body, req)
	}
	n, err := io.ReadFull(r.Body, st.body[:])
	ended := err == io.EOF || err == io.ErrUnexpectedEOF // the body fits st.body
	if ended && parseFast(st.body[:n], req, &st.fields) {
		return nil
	}
	*req = pushRequest{}
	var rest io.Reader = http.NoBody
	switch {
	case err == nil: // st.body is full, and the body is not over
		rest = r.Body
	case !ended:
		rest = errReader{err}
	}
	return a.decodeJSON(w, r, io.MultiReader(bytes.NewReader(st.body[:n]), rest), req)
}

// errReader is a stream that fails with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// decodeJSON decodes src, r's body or what it is read from, with
// encoding/json.
func (a *API) decodeJSON(w http.ResponseWriter, r *http.Request, src io.Reader, req *pushRequest) error {
	// Base64 inflates by 4/3; leave room for the envelope. A body whose
	// declared length is within the bound cannot pass it (net/http reads
	// no further): only the others need the limiting reader, which also
	// makes net/http close the connection when it trips.
	limit := int64(a.max)*4/3 + 4096
	if r.ContentLength < 0 || r.ContentLength > limit {
		src = http.MaxBytesReader(w, r.Body, limit)
	}
	d, _ := a.decoders.Get().(*bodyDecoder)
	if d == nil {
		d = &bodyDecoder{}
		d.dec = json.NewDecoder(d)
		d.dec.DisallowUnknownFields()
	}
	d.src = src
	err := d.dec.Decode(req)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("wsgate: payload larger than %d bytes", a.max)
		}
		return fmt.Errorf("wsgate: bad JSON body: %v", err)
	}
	if _, err := d.dec.Token(); err != io.EOF {
		return errors.New("wsgate: bad JSON body: trailing data after the object")
	}
	d.src = nil
	if r.ContentLength >= 0 && r.ContentLength <= maxPooledBody {
		a.decoders.Put(d)
	}
	return nil
}

// bodyDecoder is a json.Decoder kept for the next push body: a push decodes
// a tiny object, and a new decoder with its read buffer is most of what
// decoding it allocates. A json.Decoder reads a stream of values, and one
// that decoded a body's object and then met the body's end (with nothing
// but space between) holds no unread byte: it reads the next body, through
// src, as the continuation of its stream. A decoder that failed is never
// reused (its error may be sticky, its buffer may hold the rest of a bad
// body), nor one that read a large body (its buffer grew to the body's
// size).
type bodyDecoder struct {
	src io.Reader // the body being decoded
	dec *json.Decoder
}

func (d *bodyDecoder) Read(p []byte) (int, error) { return d.src.Read(p) }

// maxPooledBody is the largest body whose decoder is kept for reuse.
const maxPooledBody = 4 << 10

func (req *pushRequest) target() (wsgate.Target, error) {
	if req.To == nil {
		return wsgate.Target{}, errors.New(`wsgate: "to" is required: {"user":…}, {"users":[…]}, {"topic":…}, {"conn":…} or {"all":true}`)
	}
	t := req.To
	if t.Users != nil && len(t.Users) == 0 {
		return wsgate.Target{}, errors.New(`wsgate: "to.users" is empty`)
	}
	to := wsgate.Target{User: t.User, Users: t.Users, Topic: t.Topic, Conn: t.Conn, All: t.All}
	if to.Validate() != nil {
		return wsgate.Target{}, errors.New(`wsgate: "to" must name exactly one target: user, users, topic, conn or all`)
	}
	return to, nil
}

func (req *pushRequest) payload() ([]byte, error) {
	switch {
	case req.Data != nil && req.JSON != nil:
		return nil, errors.New(`wsgate: set "data" or "json", not both`)
	case req.JSON != nil:
		return bytes.TrimSpace(req.JSON), nil
	case req.Data != nil:
		return decodeBase64(*req.Data)
	default:
		return nil, nil
	}
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New(`wsgate: "data" is not valid base64`)
}
