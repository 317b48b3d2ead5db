package kpax_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"h12.me/kpax"
)

// ClassOf tells what to do about any error of the package: retry,
// abort the transaction, or close the producer.
func ExampleClassOf() {
	for _, err := range []error{
		fmt.Errorf("send: %w", kpax.ErrNotLeaderOrFollower),
		kpax.ErrMessageTooLarge,
		kpax.ErrProducerFenced,
		nil,
	} {
		fmt.Println(kpax.ClassOf(err))
	}
	// Output:
	// retriable
	// abortable
	// fatal
	// none
}

// A transactional producer: the records of a transaction become visible to
// read_committed consumers all together, when it commits.
func ExampleProducer_BeginTransaction() {
	ctx := context.Background()
	cl, err := kpax.New(kpax.WithSeedBrokers("127.0.0.1:9092"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	p, err := cl.NewProducer(kpax.WithTransactionalID("payments-writer"))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)
	for batch := 0; batch < 3; batch++ {
		if err := p.BeginTransaction(ctx); err != nil {
			log.Fatal(err) // fatal: fenced, or not authorized
		}
		err := p.ProduceSync(ctx,
			&kpax.Record{Topic: "payments", Value: []byte("debit")},
			&kpax.Record{Topic: "payments", Value: []byte("credit")})
		if err == nil {
			err = p.CommitTransaction(ctx)
		}
		switch kpax.ClassOf(err) {
		case kpax.ClassNone:
		case kpax.ClassFatal:
			log.Fatal(err) // a newer producer has the ID: this one must stop
		default:
			if err := p.AbortTransaction(ctx); err != nil && !errors.Is(err, kpax.ErrNoTransaction) {
				log.Fatal(err)
			}
		}
	}
}

// The class errors in a transaction loop: errors.Is says what to do about
// an error of any of the calls, without ClassOf.
func ExampleErrAbortable() {
	ctx := context.Background()
	cl, err := kpax.New(kpax.WithSeedBrokers("127.0.0.1:9092"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	p, err := cl.NewProducer(kpax.WithTransactionalID("ledger-writer"))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)
	for i := 0; i < 3; {
		err := p.BeginTransaction(ctx)
		if err == nil {
			err = p.ProduceSync(ctx, &kpax.Record{Topic: "ledger", Value: fmt.Appendf(nil, "entry %d", i)})
		}
		for err == nil || errors.Is(err, kpax.ErrRetriable) {
			// A retriable commit (ctx ended, say) leaves the
			// transaction open: commit it again.
			if err = p.CommitTransaction(ctx); err == nil {
				break
			}
		}
		switch {
		case err == nil:
			i++
		case errors.Is(err, kpax.ErrFatal):
			log.Fatal(err) // fenced by a newer producer: this one must stop
		case errors.Is(err, kpax.ErrAbortable):
			// Nothing of it is committed: abort, and write the entry again.
			if err := p.AbortTransaction(ctx); errors.Is(err, kpax.ErrFatal) {
				log.Fatal(err)
			}
		}
	}
}

// Consume-transform-produce, exactly once: each transaction commits the
// output records and the input positions together.
func ExampleGroupTransactSession() {
	ctx := context.Background()
	cl, err := kpax.New(kpax.WithSeedBrokers("127.0.0.1:9092"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	// One transactional ID per processor instance, stable across restarts.
	p, err := cl.NewProducer(kpax.WithTransactionalID("uppercaser-1"))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)
	s, err := cl.NewGroupTransactSession(p, "uppercaser", []string{"words"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(ctx)
	for {
		f, err := s.Poll(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if len(f.Records) == 0 {
			continue
		}
		if err := s.Begin(ctx); err != nil {
			log.Fatal(err)
		}
		for _, r := range f.Records {
			out := &kpax.Record{Topic: "WORDS", Key: append([]byte(nil), r.Key...), Value: toUpper(r.Value)}
			if err := p.Produce(ctx, out, nil); err != nil {
				break // the transaction cannot commit; End aborts it
			}
		}
		if _, err := s.End(ctx, true); kpax.ClassOf(err) == kpax.ClassFatal {
			log.Fatal(err)
		} // not committed: a rebalance aborted it, the records come again
	}
}

func toUpper(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		out[i] = c
	}
	return out
}
