package kpax_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"h12.me/kpax"
)

// One budget for everything the client buffers: here 8 MiB for the
// producer's records waiting for their outcome and the consumer's
// read-ahead, together. When it is full, Produce blocks (until its ctx
// ends) and fetching pauses; the records of the last Poll stay valid.
func ExampleWithMemoryBudget() {
	seed, stop := startExampleBroker(1)
	defer stop()
	cl, err := kpax.New(kpax.WithSeedBrokers(seed), kpax.WithMemoryBudget(8<<20))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	produce(ctx, cl, "events", 1, 3) // blocks while the budget is full

	c, err := cl.NewConsumer()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	c.Assign(map[string]map[int32]kpax.Offset{"events": {0: kpax.Earliest()}})
	for n := 0; n < 3; {
		f, err := c.Poll(ctx) // frees the previous Poll's share of the budget
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range f.Records {
			fmt.Printf("%d: %s\n", r.Offset, r.Value)
			n++
		}
	}
	// Output:
	// 0: p0-0
	// 1: p0-1
	// 2: p0-2
}
