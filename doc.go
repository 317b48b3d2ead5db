// Package kpax is a Kafka client: a producer, consumers, consumer groups,
// transactions, an admin API and, underneath, every request of the Kafka
// protocol at every version, for brokers from 0.8.2 to the newest 4.x.
//
// Most programs need only the high-level API below; the generated protocol
// types (the many *Request and *Response types of this package) are for the
// rare call it does not cover. The Examples (Example, ExampleClient_NewConsumer,
// ExampleClient_NewGroupConsumer, ...) are the tour in runnable form.
//
// # A client
//
// [New] builds a [Client] from functional options. It owns a pool of
// connections per broker and a cache of cluster metadata; it dials lazily and
// is safe for concurrent use. Make one per cluster, share it, and Close it
// last:
//
//	cl, err := kpax.New(kpax.WithSeedBrokers("127.0.0.1:9092"))
//	if err != nil {
//		return err
//	}
//	defer cl.Close()
//
// Every option says where it applies: to the client (New), the producer,
// the consumer or a group member. A producer, consumer or group option given
// to New is a default for everything the client makes; an option passed to a
// constructor it does not apply to is an error (ErrMisappliedOption) that
// names where it belongs. A bad value is an error too, never a panic.
//
// # Producing
//
// [Client.NewProducer] makes a [Producer]. [Producer.Produce] queues a record
// and returns at once; the callback gets its outcome (partition and offset
// set, or an error). [ProduceWaiter] waits for many of them and keeps the first
// error; [Producer.ProduceSync] produces and waits in one call:
//
//	p, err := cl.NewProducer()
//	...
//	var w kpax.ProduceWaiter
//	for _, v := range values {
//		w.Produce(ctx, p, &kpax.Record{Topic: "events", Value: v})
//	}
//	err = w.Wait(ctx) // the first failure, if any
//
// The producer is idempotent by default (acks=all, no duplicates or
// reordering within a partition on retries). A record without a Timestamp
// gets the current time at Produce, as with the Java client. Transactions:
// [WithTransactionalID], [Producer.BeginTransaction], and
// [Client.NewGroupTransactSession] for consume-transform-produce.
//
// # Consuming
//
// [Client.NewConsumer] makes a [Consumer] that reads partitions you choose
// ([Consumer.Assign] with [Earliest], [Latest], [AtOffset] or [AtTime]).
// [Client.NewGroupConsumer] makes a [GroupConsumer], a member of a consumer
// group that shares the topics' partitions with the other members (the
// classic protocol, or KIP-848's with [WithGroupProtocol]). Both hand over
// records with Poll:
//
//	g, err := cl.NewGroupConsumer("billing", []string{"events"}, kpax.WithAutoCommit(0))
//	...
//	for {
//		f, err := g.Poll(ctx)
//		if err != nil {
//			return err
//		}
//		for i := range f.Records {
//			handle(&f.Records[i])
//		}
//		if err := g.Commit(ctx); err != nil { // what Poll returned so far
//			return err
//		}
//	}
//
// A record's Key, Value and Headers are valid until the next Poll. Commits:
// automatic by default ([WithAutoCommit]), or [GroupConsumer.Commit],
// [GroupConsumer.CommitAsync] and [GroupConsumer.CommitOffsets];
// [GroupConsumer.MarkRecords] makes every commit cover exactly the records
// marked. [GroupConsumer.Close] commits before it leaves the group (even with
// automatic commits off); [GroupConsumer.CloseWithoutCommit] leaves without.
// [GroupConsumer.Process] runs a handler on the records in parallel, keeping
// each key's order, and commits only what was processed.
//
// [Client.NewShareConsumer] makes a [ShareConsumer], a member of a share
// group (KIP-932, Kafka 4.1+): queue-like consumption where the brokers give
// each record to one member at a time and each record is acknowledged on its
// own ([ShareConsumer.Acknowledge]: accept, release or reject);
// [ShareConsumer.Renew] extends the acquisition lock of a record that takes
// long to process.
//
// # Administration
//
// [Client.Admin] returns the [Admin] API of the client: topics, partitions,
// configs, groups and their offsets and lag, ACLs, quotas, SCRAM users,
// reassignments, producers and transactions. Each call routes to the right
// broker at the right version; calls on many items give one result per item.
//
// # Errors
//
// Every Kafka error code is an [*Error] with a sentinel per code
// (ErrNotLeaderOrFollower, ErrTopicAlreadyExists, ...) for errors.Is;
// [ErrorForCode] maps a code. The client wraps them with what it was doing
// ([*PartitionError], [*GroupError], [*ItemError], [*BrokerError]), all
// errors.As-able. [IsRetriable] says whether trying again may succeed;
// [ClassOf] says what to do about an error: retry, abort a transaction, or
// stop, and errors.Is(err, [ErrRetriable]) ([ErrAbortable], [ErrFatal]) asks
// it of one class. A record whose outcome is unknown fails with ErrMaybePersisted.
//
// # Contexts
//
// Every call that may wait takes a context, and the context bounds only that
// wait: Produce waits for buffer room (the delivery itself is bounded by
// [WithDeliveryTimeout]); ProduceSync, Flush and ProduceWaiter.Wait wait for
// outcomes; Poll waits for records; Commit and CommitAsync bound the commit,
// retries included; the Close methods of Producer, Consumer, GroupConsumer
// and ShareConsumer bound the final flush, commit or acknowledgement, abort
// of an open transaction and leave, then stop anyway;
// Admin calls and Request bound the whole call, retries included.
// [Client.Close] takes no context: it does not wait on the network, it fails
// what is in flight with ErrClientClosed and returns once the client's
// goroutines have ended.
//
// # Logging
//
// The client logs nothing unless given a *slog.Logger with [WithLogger]
// (connections, metadata refreshes, retries, group events). [WithHooks]
// observes requests for metrics.
//
// # The protocol underneath
//
// [Client.Request] sends any request of the Kafka protocol guide to the
// broker it belongs to (any broker, a partition's leader, the controller, a
// group or transaction coordinator) at the highest version both sides
// support, and [Client.RequestBroker] to a broker you name. The request and
// response types, every API and every version, are generated from the guide
// (protocol_gen.go); [AppendRecordBatch] and [RecordReader] encode and decode
// record batches.
package kpax
