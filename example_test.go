package kpax_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"h12.me/kpax"
)

// The tour of the package doc, end to end: a Client, a Producer that sends
// three records and waits for them, and a Consumer that reads them back.
// (The Examples run against an in-memory stand-in for a broker; give
// WithSeedBrokers your brokers' host:port.)
func Example() {
	seed, stop := startExampleBroker(1)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	cl, err := kpax.New(kpax.WithSeedBrokers(seed))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	p, err := cl.NewProducer()
	if err != nil {
		log.Fatal(err)
	}
	err = p.ProduceSync(ctx,
		&kpax.Record{Topic: "greetings", Value: []byte("hello")},
		&kpax.Record{Topic: "greetings", Value: []byte("hola")},
		&kpax.Record{Topic: "greetings", Value: []byte("salut")})
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		log.Fatal(err)
	}

	c, err := cl.NewConsumer()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.Assign(map[string]map[int32]kpax.Offset{"greetings": {0: kpax.Earliest()}}); err != nil {
		log.Fatal(err)
	}
	for n := 0; n < 3; {
		f, err := c.Poll(ctx)
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range f.Records {
			fmt.Printf("%s/%d@%d %s\n", r.Topic, r.Partition, r.Offset, r.Value)
			n++
		}
	}
	// Output:
	// greetings/0@0 hello
	// greetings/0@1 hola
	// greetings/0@2 salut
}

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

// Every option says where it applies (client, producer, consumer, group);
// passed anywhere else it is an error that says where it belongs.
func ExampleOption() {
	cl, err := kpax.New(kpax.WithSeedBrokers("127.0.0.1:9092"),
		kpax.WithLinger(10*time.Millisecond)) // New takes producer options as defaults
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	_, err = cl.NewProducer(kpax.WithSeedBrokers("127.0.0.1:9093"))
	fmt.Println(errors.Is(err, kpax.ErrMisappliedOption))
	fmt.Println(err)
	_, err = cl.NewConsumer(kpax.WithStartOffset(kpax.Latest()))
	fmt.Println(err)
	// Output:
	// true
	// kpax: bad options: option does not apply here: WithSeedBrokers is a client option: pass it to kpax.New
	// kpax: bad options: option does not apply here: WithStartOffset is a group option: pass it to Client.NewGroupConsumer (or to kpax.New, for every group member)
}

// The client logs through the *slog.Logger it is given (nothing by
// default): connections, metadata refreshes, retries, group events.
func ExampleWithLogger() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cl, err := kpax.New(kpax.WithSeedBrokers("127.0.0.1:9092"), kpax.WithLogger(logger.With("app", "billing")))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
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

// Keys stay on their partitions when partitions are added: the producer
// reports the change, and KeyStablePartitioner hashes keys over the count
// the topic had first, until Rebase.
func ExampleKeyStablePartitioner() {
	stable := kpax.KeyStablePartitioner()
	alice := &kpax.Record{Topic: "orders", Key: []byte("alice")}
	fmt.Println("3 partitions:", stable.Partition(alice, 3, nil))
	fmt.Printf("6 partitions: %d (murmur2 alone: %d)\n", stable.Partition(alice, 6, nil), kpax.Murmur2Partitioner().Partition(alice, 6, nil))
	stable.Rebase("orders") // the consumers are ready for keys to move
	fmt.Println("after Rebase:", stable.Partition(alice, 6, nil))

	// A producer using it, told of expansions (at most the metadata max
	// age after them).
	cl, err := kpax.New(kpax.WithSeedBrokers("127.0.0.1:9092"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	p, err := cl.NewProducer(kpax.WithPartitioner(stable),
		kpax.WithOnPartitionsChanged(func(topic string, before, after int) {
			log.Printf("%s: %d partitions, was %d; keys stay on the first %d until Rebase", topic, after, before, stable.Count(topic))
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(context.Background())
	// Output:
	// 3 partitions: 0
	// 6 partitions: 0 (murmur2 alone: 3)
	// after Rebase: 3
}

// Produce asynchronously with a callback per record, then wait for all of
// them with Flush. A callback runs on a producer goroutine: keep it short.
func ExampleProducer_Produce() {
	seed, stop := startExampleBroker(3)
	defer stop()
	cl, err := kpax.New(kpax.WithSeedBrokers(seed))
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
	var written, failed int
	for i := range 100 {
		r := &kpax.Record{Topic: "events", Key: []byte(fmt.Sprint("user-", i%7)), Value: []byte(fmt.Sprint("event ", i))}
		err := p.Produce(ctx, r, func(r *kpax.Record, err error) {
			switch {
			case errors.Is(err, kpax.ErrMaybePersisted):
				log.Printf("%s: may or may not be in the log: %v", r.Value, err)
				failed++
			case err != nil:
				log.Printf("%s: not written: %v", r.Value, err)
				failed++
			default:
				written++ // r.Partition and r.Offset are set
			}
		})
		if err != nil {
			log.Fatal(err) // ctx ended while the buffer was full, or the producer is closed
		}
	}
	if err := p.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(written, "written,", failed, "failed")
	// Output: 100 written, 0 failed
}

// A ProduceWaiter waits for many asynchronous produces and keeps the first
// error: no WaitGroup, no error bookkeeping.
func ExampleProduceWaiter() {
	seed, stop := startExampleBroker(3)
	defer stop()
	cl, err := kpax.New(kpax.WithSeedBrokers(seed))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	p, err := cl.NewProducer()
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer p.Close(ctx)

	var w kpax.ProduceWaiter
	for i := range 1000 {
		if err := w.Produce(ctx, p, &kpax.Record{Topic: "events", Value: []byte(fmt.Sprint(i))}); err != nil {
			break // Wait returns it
		}
	}
	if err := w.Wait(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("all written")
	// Output: all written
}

// Read chosen partitions from chosen start points.
func ExampleClient_NewConsumer() {
	seed, stop := startExampleBroker(2)
	defer stop()
	cl, err := kpax.New(kpax.WithSeedBrokers(seed))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	produce(ctx, cl, "events", 2, 5)

	c, err := cl.NewConsumer(kpax.WithIsolationLevel(kpax.ReadCommitted))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	err = c.Assign(map[string]map[int32]kpax.Offset{
		"events": {0: kpax.AtOffset(3), 1: kpax.AtTime(time.Now().Add(-time.Hour))},
	})
	if err != nil {
		log.Fatal(err)
	}
	got := map[int32][]string{}
	for len(got[0]) < 2 || len(got[1]) < 5 {
		f, err := c.Poll(ctx)
		if err != nil {
			log.Fatal(err) // ctx ended or the consumer closed
		}
		for _, e := range f.Errors {
			log.Print(e) // retried for you; reported so nothing is silent
		}
		for _, r := range f.Records { // valid until the next Poll: copy what you keep
			got[r.Partition] = append(got[r.Partition], fmt.Sprintf("%d:%s", r.Offset, r.Value))
		}
	}
	fmt.Println(got[0])
	fmt.Println(got[1])
	// Output:
	// [3:p0-3 4:p0-4]
	// [0:p1-0 1:p1-1 2:p1-2 3:p1-3 4:p1-4]
}

// produce writes n records to each of the topic's partitions, "p<partition>-<i>".
func produce(ctx context.Context, cl *kpax.Client, topic string, partitions int32, n int) {
	p, err := cl.NewProducer(kpax.WithPartitioner(kpax.ManualPartitioner()))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)
	var w kpax.ProduceWaiter
	for i := range n {
		for part := range partitions {
			w.Produce(ctx, p, &kpax.Record{Topic: topic, Partition: part, Value: []byte(fmt.Sprintf("p%d-%d", part, i))})
		}
	}
	if err := w.Wait(ctx); err != nil {
		log.Fatal(err)
	}
}

// Any request of the protocol goes to the broker it belongs to (here the
// partition's leader) at the highest version both sides support. Until the
// admin API lands, admin tasks (CreateTopics, DescribeGroups, ...) are sent
// this way.
func ExampleClient_Request() {
	seed, stop := startExampleBroker(1)
	defer stop()
	cl, err := kpax.New(kpax.WithSeedBrokers(seed))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	produce(ctx, cl, "events", 1, 3)

	resp, err := cl.Request(ctx, &kpax.ListOffsetsRequest{ReplicaID: -1, Topics: []kpax.ListOffsetsRequestTopic{{
		Name: "events", Partitions: []kpax.ListOffsetsRequestTopicPartition{{PartitionIndex: 0, Timestamp: -1, CurrentLeaderEpoch: -1}},
	}}})
	if err != nil {
		log.Fatal(err) // no response: the broker was unreachable, ctx ended, ...
	}
	p := resp.(*kpax.ListOffsetsResponse).Topics[0].Partitions[0]
	if err := kpax.ErrorForCode(p.ErrorCode); err != nil {
		log.Fatal(err) // the broker's answer was an error code
	}
	fmt.Println("end offset", p.Offset)
	// Output: end offset 3
}

// Administration goes through the client: Admin routes each request to the
// broker it belongs to (CreateTopics to the controller) and gives one result
// per item, each with an error that errors.Is can match.
func ExampleClient_Admin() {
	seed, stop := startExampleBroker(3)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kpax.New(kpax.WithSeedBrokers(seed))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	adm := cl.Admin()
	for range 2 {
		results, err := adm.CreateTopics(ctx, kpax.NewTopic{Name: "orders", Partitions: 3, ReplicationFactor: -1})
		if results == nil {
			log.Fatal(err) // no answer at all: no broker, timeout, ...
		}
		for _, r := range results {
			switch {
			case errors.Is(r.Err, kpax.ErrTopicAlreadyExists):
				fmt.Println(r.Name, "exists already")
			case r.Err != nil:
				fmt.Println(r.Name, "failed:", r.Err)
			default:
				fmt.Println(r.Name, "created with", r.Partitions, "partitions")
			}
		}
	}
	// Output:
	// orders created with 3 partitions
	// orders exists already
}
