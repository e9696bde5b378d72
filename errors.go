package wsgate

import (
	"errors"

	"github.com/wsgate/wsgate/broker"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

var (
	// ErrServerClosed is returned by Serve, Run and Push after Shutdown.
	ErrServerClosed = errors.New("wsgate: server closed")
	// ErrNotConnected is returned by Push and Disconnect when the target
	// connection is not open.
	ErrNotConnected = broker.ErrNotConnected
	// ErrSlowConsumer is the cause recorded when a connection is closed with
	// 4000 because its send queue was full.
	ErrSlowConsumer = errors.New("wsgate: slow consumer")
	// ErrUnavailable wraps the error of a push that a shared Broker could
	// not take (Redis unreachable): no node will deliver it.
	ErrUnavailable = errors.New("wsgate: broker unavailable")
)

// ReplyError is an error a handler returns to send a specific error frame to
// the client: Code and Message reach it as they are. It is wire.Error, so
// handlers and the Go client share one type; build it with &ReplyError{...}.
// Any other error becomes code CodeInternal, message "internal error", and
// is logged once with the connection id and action.
type ReplyError = wire.Error

// Close codes the gateway sends, as the engine's type.
const (
	closeGoingAway    = websocket.StatusCode(wire.CloseGoingAway)
	closeSlowConsumer = websocket.StatusCode(wire.CloseSlowConsumer)
	closeRateLimited  = websocket.StatusCode(wire.CloseRateLimited)
	closeRestart      = websocket.StatusCode(wire.CloseServiceRestart)
)
