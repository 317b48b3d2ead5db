package kpax_test

import (
	"context"
	"log"
	"time"

	"h12.me/kpax"
)

// A share group member (KIP-932, Kafka 4.1+) that processes records one by
// one: a record it cannot handle yet is released for another try (perhaps
// by another member), one that can never succeed is rejected, and the rest
// are accepted. With ShareAckExplicit every record must be acknowledged
// before the next Poll, which sends the acknowledgements along.
func ExampleClient_NewShareConsumer() {
	cl, err := kpax.New(kpax.WithSeedBrokers("127.0.0.1:9092"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	s, err := cl.NewShareConsumer("workers", []string{"jobs"}, kpax.WithShareAckMode(kpax.ShareAckExplicit))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(context.Background()) // sends what is pending, leaves the group
	ctx := context.Background()
	for {
		f, err := s.Poll(ctx)
		if err != nil {
			log.Fatal(err) // e.g. the broker has no share groups
		}
		for _, e := range f.Errors {
			log.Print(e) // retried by the consumer; failed acknowledgements come back as deliveries
		}
		for i := range f.Records {
			r := &f.Records[i]
			switch err := process(r.Value); {
			case err == nil:
				s.Acknowledge(r, kpax.AckAccept)
			case r.DeliveryCount < 3:
				s.Acknowledge(r, kpax.AckRelease) // try again later
			default:
				s.Acknowledge(r, kpax.AckReject) // never again
			}
		}
	}
}

func process([]byte) error { return nil }

// A share group member whose jobs may outlast the acquisition lock
// (share.record.lock.duration.ms, 30 s by default): while a job runs, it
// renews the lock of its record (KIP-1222, Kafka 4.2+) so that the record
// does not go to another member, then accepts it.
func ExampleShareConsumer_Renew() {
	cl, err := kpax.New(kpax.WithSeedBrokers("127.0.0.1:9092"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	s, err := cl.NewShareConsumer("slow-workers", []string{"jobs"},
		kpax.WithShareAckMode(kpax.ShareAckExplicit), kpax.WithShareMaxRecords(1),
		kpax.WithShareAcquireMode(kpax.ShareAcquireRecordLimit)) // one record at a time
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx := context.Background()
	for {
		f, err := s.Poll(ctx)
		if err != nil {
			log.Fatal(err)
		}
		for i := range f.Records {
			r := &f.Records[i]
			done := make(chan error, 1)
			go func() { done <- process(r.Value) }()
			tick := time.NewTicker(10 * time.Second) // well within the lock
		wait:
			for {
				select {
				case err := <-done:
					if err != nil {
						s.Acknowledge(r, kpax.AckRelease)
					} else {
						s.Acknowledge(r, kpax.AckAccept)
					}
					break wait
				case <-tick.C:
					if err := s.Renew(ctx, r); err != nil {
						log.Print(err) // the lock may be lost: the record may be processed twice
					}
				}
			}
			tick.Stop()
		}
	}
}
