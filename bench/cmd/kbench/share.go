package main

// Share consumption (KIP-932), real broker only: c share consumers in one
// fresh share group, each with a client of its own in this process, read a
// 1-partition topic filled beforehand; every record is accepted implicitly
// by the next poll (kpax's default ShareAckImplicit, franz-go's
// auto-accept of the last poll's records). kpax and franz-go only: the
// other peers have no share consumer.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"h12.me/kpax"
)

// shareRecords caps the records of a share run: the broker hands a
// 1-partition share group about 9k records/s on this machine, whatever the
// client, so a full-size run would take a minute.
const shareRecords = 30_000

// shareWorkloads are the runs of this file, for the real broker only.
func shareWorkloads() []workload {
	var ws []workload
	for _, c := range []int{1, 3} {
		ws = append(ws, workload{name: fmt.Sprintf("share consume c%d p1", c),
			spec: Spec{Kind: "share", Partitions: 1, Goroutines: c}, reps: 3})
	}
	return ws
}

// runShare is the "share" workload: the clock runs from the consumers'
// creation (the join included) to the N-th record.
func runShare(ctx context.Context, s *Spec, res *Result) error {
	if err := shareEarliest(ctx, s); err != nil {
		return err
	}
	var poll func(ctx context.Context, got *atomic.Int64) (func(), string, error)
	switch s.Client {
	case "kpax":
		poll = func(ctx context.Context, got *atomic.Int64) (func(), string, error) { return kpaxShare(ctx, s, got) }
	case "franz-go":
		poll = func(ctx context.Context, got *atomic.Int64) (func(), string, error) { return franzShare(ctx, s, got) }
	default:
		return fmt.Errorf("no share consumer for %s", s.Client)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got atomic.Int64
	a := takeSample()
	var wg sync.WaitGroup
	var errs []error
	var mu sync.Mutex
	for range max(s.Goroutines, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			closeFn, cfg, err := poll(ctx, &got)
			mu.Lock()
			defer mu.Unlock()
			res.Config = cfg
			if err != nil && got.Load() < int64(s.N) {
				errs = append(errs, err)
			}
			if got.Load() >= int64(s.N) {
				cancel()
			}
			if closeFn != nil {
				defer closeFn()
			}
		}()
	}
	wg.Wait()
	b := takeSample()
	res.measure(a, b)
	res.Records = int(min(got.Load(), int64(s.N)))
	if res.Records < s.N {
		errs = append(errs, fmt.Errorf("%d of %d records", got.Load(), s.N))
	}
	return errors.Join(errs...)
}

// shareEarliest sets the group's share.auto.offset.reset to earliest: the
// records were written before the group starts.
func shareEarliest(ctx context.Context, s *Spec) error {
	cl, err := kpax.New(kpax.WithSeedBrokers(s.Addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	r, err := cl.Admin().AlterConfigs(ctx, kpax.AlterConfig{
		Resource: kpax.ConfigResource{Type: kpax.ConfigGroup, Name: s.Group},
		Changes:  []kpax.ConfigChange{{Name: "share.auto.offset.reset", Op: kpax.ConfigSet, Value: "earliest"}}})
	if err == nil {
		err = r[0].Err
	}
	return err
}

// kpaxShare polls one kpax share consumer until ctx ends or N records are
// in; it returns the consumer's close.
func kpaxShare(ctx context.Context, s *Spec, got *atomic.Int64) (func(), string, error) {
	cl, err := kpax.New(kpax.WithSeedBrokers(s.Addr))
	if err != nil {
		return nil, "", err
	}
	sc, err := cl.NewShareConsumer(s.Group, []string{s.Topic})
	if err != nil {
		cl.Close()
		return nil, "", err
	}
	closeFn := func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sc.Close(cctx)
		cl.Close()
	}
	cfg := fmt.Sprintf("kpax.New(WithSeedBrokers(%q)).NewShareConsumer(%q, [%s]); Poll loop, %d consumers; "+
		"other settings: kpax defaults (ShareAckImplicit: accepted by the next Poll, 500 records per fetch)",
		s.Addr, s.Group, s.Topic, s.Goroutines)
	for got.Load() < int64(s.N) {
		f, err := sc.Poll(ctx)
		if err != nil {
			return closeFn, cfg, err
		}
		for i := range f.Records {
			_ = len(f.Records[i].Value)
		}
		got.Add(int64(len(f.Records)))
	}
	return closeFn, cfg, nil
}

// franzShare is kpaxShare with franz-go's share consumer.
func franzShare(ctx context.Context, s *Spec, got *atomic.Int64) (func(), string, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr), kgo.ConsumeTopics(s.Topic), kgo.ShareGroup(s.Group))
	if err != nil {
		return nil, "", err
	}
	cfg := fmt.Sprintf("kgo.NewClient(SeedBrokers(%q), ConsumeTopics(%q), ShareGroup(%q)); PollFetches loop, "+
		"%d consumers; other settings: franz-go defaults (the last poll's records auto-accepted by the next, "+
		"500 records per fetch)", s.Addr, s.Topic, s.Group, s.Goroutines)
	for got.Load() < int64(s.N) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return cl.Close, cfg, ctx.Err()
		}
		if err := fs.Err0(); err != nil {
			return cl.Close, cfg, err
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) { _ = len(r.Value); n++ })
		got.Add(int64(n))
	}
	return cl.Close, cfg, nil
}
