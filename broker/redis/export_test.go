package redis

import "context"

// Resync runs the resync a node does after its subscription was down.
func (b *Broker) Resync(ctx context.Context) error { return (&subscriber{b}).resync(ctx) }
