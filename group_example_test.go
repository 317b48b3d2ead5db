package kpax_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"h12.me/kpax"
)

// A group member that processes each Poll's records and then commits them:
// at-least-once delivery, exactly once while no member crashes.
func ExampleClient_NewGroupConsumer() {
	cl, err := kpax.New(kpax.WithSeedBrokers("127.0.0.1:9092"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	g, err := cl.NewGroupConsumer("billing", []string{"orders"},
		kpax.WithStartOffset(kpax.Earliest()),
		kpax.WithAutoCommit(0), // commit by hand, after processing
		kpax.WithOnRevoked(func(_ context.Context, parts map[string][]int32) {
			log.Printf("giving up %v", parts)
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		g.Close(ctx) // commits, leaves the group
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		f, err := g.Poll(ctx)
		if err != nil {
			return // ctx ended, or a fatal group error
		}
		for _, e := range f.Errors {
			log.Print(e) // retried by the member; for the record
		}
		for _, r := range f.Records {
			fmt.Printf("%s/%d@%d: %s\n", r.Topic, r.Partition, r.Offset, r.Value)
		}
		if err := g.Commit(ctx); err != nil {
			log.Print(err) // e.g. a rebalance: the next owner reprocesses
		}
	}
}
