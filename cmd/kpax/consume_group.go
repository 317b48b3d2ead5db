package main

import (
	"context"
	"errors"

	"h12.me/kpax"
)

// consumeGroup consumes as a member of a consumer group.
func consumeGroup(ctx context.Context, e *env, cl *kpax.Client, specs []topicSpec, o consumeOpts, opts []kpax.Option) error {
	return errors.New("consume -group: not supported yet")
}
