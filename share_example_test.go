package kpax_test

import (
	"context"
	"log"

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
