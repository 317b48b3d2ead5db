package kpax_test

import (
	"context"
	"fmt"
	"log"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"h12.me/kpax"
)

// A group member that processes each Poll's records and then commits them:
// at-least-once delivery, exactly once while no member crashes.
func ExampleClient_NewGroupConsumer() {
	seed, stop := startExampleBroker(1)
	defer stop()
	cl, err := kpax.New(kpax.WithSeedBrokers(seed))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	produce(ctx, cl, "orders", 1, 3)

	g, err := cl.NewGroupConsumer("billing", []string{"orders"},
		kpax.WithStartOffset(kpax.Earliest()), // where a partition without a commit starts
		kpax.WithAutoCommit(0),                // commit by hand, after processing
		kpax.WithOnRevoked(func(_ context.Context, parts map[string][]int32) {
			log.Printf("giving up %v", parts)
		}))
	if err != nil {
		log.Fatal(err)
	}
	for n := 0; n < 3; {
		f, err := g.Poll(ctx)
		if err != nil {
			log.Fatal(err) // ctx ended, or a fatal group error
		}
		for _, e := range f.Errors {
			log.Print(e) // retried by the member; for the record
		}
		for _, r := range f.Records {
			fmt.Printf("%s/%d@%d: %s\n", r.Topic, r.Partition, r.Offset, r.Value)
			n++
		}
		if err := g.Commit(ctx); err != nil {
			log.Print(err) // e.g. a rebalance: the next owner reprocesses
		}
	}
	committed, err := g.Committed(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("committed", committed)
	if err := g.Close(ctx); err != nil { // commits, leaves the group
		log.Print(err)
	}
	// Output:
	// orders/0@0: p0-0
	// orders/0@1: p0-1
	// orders/0@2: p0-2
	// committed map[orders:map[0:3]]
}

// Marking: the member commits exactly what the application marked as
// processed (on Commit, automatically, on revocation and in Close), so an
// application that stops in the middle of a Poll's records commits only
// what it did.
func ExampleGroupConsumer_MarkRecords() {
	seed, stop := startExampleBroker(1)
	defer stop()
	cl, err := kpax.New(kpax.WithSeedBrokers(seed))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	produce(ctx, cl, "orders", 1, 10)

	g, err := cl.NewGroupConsumer("billing", []string{"orders"})
	if err != nil {
		log.Fatal(err)
	}
	processed := 0
	for processed < 4 {
		f, err := g.Poll(ctx)
		if err != nil {
			log.Fatal(err)
		}
		for i := range f.Records {
			if processed == 4 {
				break // stop in the middle of the Poll's records
			}
			processed++
			g.MarkRecords(&f.Records[i])
		}
	}
	if err := g.Close(ctx); err != nil { // commits the marks, leaves the group
		log.Print(err)
	}

	// The next member starts after the last record marked.
	g2, err := cl.NewGroupConsumer("billing", []string{"orders"})
	if err != nil {
		log.Fatal(err)
	}
	defer g2.CloseWithoutCommit(ctx) // leaves, commits nothing
	f, err := g2.Poll(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("resumed at offset", f.Records[0].Offset)
	// Output: resumed at offset 4
}

// Pause stops fetching partitions without leaving the group, e.g. while a
// downstream system is slow; the pause outlasts rebalances until Resume.
func ExampleGroupConsumer_Pause() {
	seed, stop := startExampleBroker(2)
	defer stop()
	cl, err := kpax.New(kpax.WithSeedBrokers(seed))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	produce(ctx, cl, "orders", 2, 3)

	g, err := cl.NewGroupConsumer("billing", []string{"orders"})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close(ctx)
	g.Pause("orders", 1)
	for n := 0; n < 3; {
		f, err := g.Poll(ctx)
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range f.Records {
			fmt.Println("partition", r.Partition) // never 1 while paused
			n++
		}
	}
	pos, _ := g.Position("orders", 0)
	fmt.Println("position of partition 0:", pos)
	g.Resume("orders", 1)
	// Output:
	// partition 0
	// partition 0
	// partition 0
	// position of partition 0: 3
}

// Process runs a handler on many goroutines inside a group: the records of
// one key in offset order, different keys in parallel. Every commit covers
// only what the handler finished: a record still running, retried or
// failed is never committed past. A handler that keeps failing sends its
// record to a dead-letter topic here, after three retries.
func ExampleGroupConsumer_Process() {
	seed, stop := startExampleBroker(2)
	defer stop()
	cl, err := kpax.New(kpax.WithSeedBrokers(seed))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := cl.NewProducer(kpax.WithPartitioner(kpax.ManualPartitioner()))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)
	var w kpax.ProduceWaiter
	for i := range 12 { // user-0 and user-2 on partition 0, user-1 on 1
		w.Produce(ctx, p, &kpax.Record{Topic: "orders", Partition: int32(i % 3 % 2),
			Key: fmt.Appendf(nil, "user-%d", i%3), Value: fmt.Appendf(nil, "order-%d", i)})
	}
	if err := w.Wait(ctx); err != nil {
		log.Fatal(err)
	}

	g, err := cl.NewGroupConsumer("billing", []string{"orders"})
	if err != nil {
		log.Fatal(err)
	}
	var mu sync.Mutex
	byKey := map[string][]string{}
	var n atomic.Int32
	pctx, stopProcessing := context.WithCancel(ctx)
	defer stopProcessing()
	err = g.Process(pctx, func(ctx context.Context, r *kpax.Record) error {
		// r is valid until the handler returns: keep copies only.
		mu.Lock()
		byKey[string(r.Key)] = append(byKey[string(r.Key)], string(r.Value))
		mu.Unlock()
		if n.Add(1) == 12 {
			stopProcessing() // Process drains, commits and returns nil
		}
		return nil
	},
		kpax.WithProcessConcurrency(8),  // handler calls at once
		kpax.WithProcessMaxInFlight(64), // records taken and not done: fetching waits beyond
		kpax.WithProcessErrorPolicy(kpax.RetryPolicy(3, 100*time.Millisecond, 2*time.Second,
			kpax.DeadLetterPolicy(p, "orders.dlq"))))
	if err != nil {
		log.Fatal(err) // a *ProcessError if a policy stopped it, or a fatal group error
	}
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		fmt.Println(k, byKey[k]) // in order within each key
	}
	committed, err := g.Committed(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("committed", committed)
	if err := g.Close(ctx); err != nil {
		log.Print(err)
	}
	// Output:
	// user-0 [order-0 order-3 order-6 order-9]
	// user-1 [order-1 order-4 order-7 order-10]
	// user-2 [order-2 order-5 order-8 order-11]
	// committed map[orders:map[0:8 1:4]]
}
