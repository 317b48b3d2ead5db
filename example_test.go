package kpax_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"h12.me/kpax"
)

// A bad option is an error from New, never a panic or a log line.
func ExampleNew() {
	_, err := kpax.New(kpax.WithDialTimeout(-time.Second))
	fmt.Println(err != nil)
	cl, err := kpax.New(kpax.WithSeedBrokers("127.0.0.1:9092"), kpax.WithClientID("billing"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close() // connections are dialed lazily: nothing was dialed yet
	fmt.Println("ok")
	// Output:
	// true
	// ok
}

// Kafka error codes are *kpax.Error values: compare them with errors.Is
// through any wrapping, and ask whether retrying makes sense.
func ExampleErrorForCode() {
	err := fmt.Errorf("produce to orders/3: %w", kpax.ErrorForCode(6))
	fmt.Println(errors.Is(err, kpax.ErrNotLeaderOrFollower), kpax.IsRetriable(err))
	var ke *kpax.Error
	if errors.As(err, &ke) {
		fmt.Println(ke.Code(), ke.Name())
	}
	fmt.Println(kpax.ErrorForCode(0) == nil)
	// Output:
	// true true
	// 6 NOT_LEADER_OR_FOLLOWER
	// true
}

// Keyed records go where the Java client and librdkafka's murmur2_random
// put them.
func ExampleMurmur2Partitioner() {
	p := kpax.Murmur2Partitioner()
	for _, key := range []string{"alice", "bob", "carol", "alice"} {
		fmt.Println(key, p.Partition(&kpax.Record{Key: []byte(key)}, 6, nil))
	}
	// Output:
	// alice 3
	// bob 0
	// carol 2
	// alice 3
}

// Produce asynchronously with a callback per record, then wait for all of
// them with Flush.
func ExampleProducer_Produce() {
	cl, err := kpax.New(kpax.WithSeedBrokers("127.0.0.1:9092"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	p, err := cl.NewProducer(kpax.WithLinger(5*time.Millisecond), kpax.WithCompression(kpax.CompressionLZ4))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer p.Close(ctx) // drains what is buffered
	for i := range 100 {
		r := &kpax.Record{Topic: "events", Key: []byte(fmt.Sprint("user-", i%7)), Value: []byte(fmt.Sprint("event ", i))}
		err := p.Produce(ctx, r, func(r *kpax.Record, err error) {
			if errors.Is(err, kpax.ErrMaybePersisted) {
				log.Printf("%s: may or may not be in the log: %v", r.Value, err)
			} else if err != nil {
				log.Printf("%s: not written: %v", r.Value, err)
			}
		})
		if err != nil {
			log.Fatal(err) // ctx ended while the buffer was full, or the producer is closed
		}
	}
	if err := p.Flush(ctx); err != nil {
		log.Fatal(err)
	}
}

// Read chosen partitions from chosen start points.
func ExampleClient_NewConsumer() {
	cl, err := kpax.New(kpax.WithSeedBrokers("127.0.0.1:9092"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	c, err := cl.NewConsumer(kpax.WithIsolationLevel(kpax.ReadCommitted))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(context.Background())
	c.Assign(map[string]map[int32]kpax.Offset{
		"events": {0: kpax.Earliest(), 1: kpax.AtOffset(42), 2: kpax.AtTime(time.Now().Add(-time.Hour))},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		f, err := c.Poll(ctx)
		if err != nil {
			return // ctx ended or the consumer closed
		}
		for _, e := range f.Errors {
			log.Print(e) // retried for you; reported so nothing is silent
		}
		for _, r := range f.Records { // valid until the next Poll
			fmt.Printf("%d@%d %s\n", r.Partition, r.Offset, r.Value)
		}
	}
}

// Any request of the protocol goes to the broker it belongs to (here the
// partition's leader) at the highest version both sides support.
func ExampleClient_Request() {
	cl, err := kpax.New(kpax.WithSeedBrokers("127.0.0.1:9092"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Request(ctx, &kpax.ListOffsetsRequest{ReplicaID: -1, Topics: []kpax.ListOffsetsRequestTopic{{
		Name: "events", Partitions: []kpax.ListOffsetsRequestTopicPartition{{PartitionIndex: 0, Timestamp: -1, CurrentLeaderEpoch: -1}},
	}}})
	if err != nil {
		log.Fatal(err)
	}
	p := resp.(*kpax.ListOffsetsResponse).Topics[0].Partitions[0]
	if err := kpax.ErrorForCode(p.ErrorCode); err != nil {
		log.Fatal(err)
	}
	fmt.Println("end offset", p.Offset)
}
