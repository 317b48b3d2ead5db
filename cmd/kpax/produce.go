package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"h12.me/kpax"
)

// headerFlag is -H name=value, repeatable.
type headerFlag []kpax.Header

func (h *headerFlag) String() string {
	if h == nil {
		return ""
	}
	var parts []string
	for _, x := range *h {
		parts = append(parts, x.Key+"="+string(x.Value))
	}
	return strings.Join(parts, ",")
}

func (h *headerFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want name=value, not %q", s)
	}
	*h = append(*h, kpax.Header{Key: name, Value: []byte(value)})
	return nil
}

// parseAcks parses -acks.
func parseAcks(s string) (kpax.Acks, error) {
	switch strings.ToLower(s) {
	case "all", "-1":
		return kpax.AcksAll, nil
	case "1":
		return kpax.AcksLeader, nil
	case "0":
		return kpax.AcksNone, nil
	}
	return 0, fmt.Errorf("-acks %q: want all (-1), 1 or 0", s)
}

// closeTimeout bounds the sending of what is buffered when a producer or a
// consumer stops.
const closeTimeout = 30 * time.Second

func runProduce(ctx context.Context, e *env, args []string) error {
	fs := e.flags("produce", "TOPIC", `Sends each line of stdin (without its newline) as a record to TOPIC, until the end of
the input or Ctrl-C; either way what was read is sent before kpax exits. The topic
must exist (kpax topic create).`)
	keyDelim := fs.String("K", "", "key delimiter: each line is KEY<delim>VALUE, split at the first delimiter (a line without one has a null key)")
	var headers headerFlag
	fs.Var(&headers, "H", "header `name=value` of every record (repeatable)")
	partition := fs.Int("p", -1, "partition to send to; -1: by key with murmur2 as the Java client does, sticky for null keys")
	compression := fs.String("z", "none", "compression: none, gzip, snappy, lz4 or zstd")
	acksFlag := fs.String("acks", "all", "acknowledgements: all (-1, idempotent), 1 (the leader) or 0 (none)")
	linger := fs.Duration("linger", 5*time.Millisecond, "how long a batch waits for more records")
	txnID := fs.String("txn", "", "transactional `ID`: the lines are committed in one transaction (aborted on an error), fencing older producers with the ID")
	txnLines := fs.Int("txn-lines", 0, "with -txn, commit a transaction every `N` lines (0: one for the run)")
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("produce: want one TOPIC, not %d arguments (try kpax produce -h)", len(pos))
	}
	topic := pos[0]
	if strings.Contains(topic, ":") {
		return usagef("produce: bad topic %q: use -p for a partition", topic)
	}
	codec, err := kpax.ParseCompression(*compression)
	if err != nil {
		return usagef("-z: %v", err)
	}
	acks, err := parseAcks(*acksFlag)
	if err != nil {
		return usageError{err}
	}
	if *partition < -1 || *partition > 1<<31-1 {
		return usagef("-p %d: want a partition number", *partition)
	}
	if *linger < 0 {
		return usagef("-linger %v: must not be negative", *linger)
	}
	delim := []byte(*keyDelim)
	txn, txnOpts, err := newProduceTxn(*txnID, *txnLines)
	if err != nil {
		return err
	}

	ctx, cancel := e.deadline(ctx, 0)
	defer cancel()
	opts := append([]kpax.Option{kpax.WithCompression(codec), kpax.WithAcks(acks), kpax.WithLinger(*linger)}, txnOpts...)
	spec := topicSpec{topic: topic}
	if *partition >= 0 {
		opts = append(opts, kpax.WithPartitioner(kpax.ManualPartitioner()))
		spec.partitions = []int32{int32(*partition)}
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	mctx, mcancel := e.deadline(ctx, adminTimeout)
	_, err = resolve(mctx, cl, []topicSpec{spec})
	mcancel()
	if err != nil {
		return err
	}
	prod, err := cl.NewProducer(opts...)
	if err != nil {
		return usageError{err}
	}
	if err := txn.begin(ctx, prod); err != nil {
		prod.Close(ctx)
		return err
	}

	prog := e.startProgress("produced", false)
	var (
		mu       sync.Mutex
		firstErr error
	)
	cb := func(r *kpax.Record, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
			return
		}
		prog.add(1)
	}
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return firstErr
	}

	lines, readErr, stopReading := readLines(e.stdin)
	defer stopReading()
	n := 0
	var loopErr error
loop:
	for failed() == nil {
		select {
		case <-ctx.Done():
			break loop
		case line, ok := <-lines:
			if !ok {
				break loop
			}
			n++
			r := &kpax.Record{Topic: topic, Partition: int32(*partition), Value: line, Headers: headers, Timestamp: time.Now()}
			if len(delim) > 0 {
				if i := bytes.Index(line, delim); i >= 0 {
					r.Key, r.Value = line[:i], line[i+len(delim):]
				}
			}
			if err := prod.Produce(ctx, r, cb); err != nil {
				if ctx.Err() == nil {
					loopErr = fmt.Errorf("line %d: %w", n, err)
				}
				break loop
			}
			if err := txn.produced(ctx); err != nil {
				loopErr = fmt.Errorf("line %d: %w", n, err)
				break loop
			}
		}
	}
	// Send what was read, even after Ctrl-C or a timeout.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer ccancel()
	txnErr := txn.end(cctx, errors.Join(loopErr, failed()))
	closeErr := errors.Join(txnErr, prod.Close(cctx))
	prog.finish()
	switch {
	case loopErr != nil:
		return loopErr
	case failed() != nil:
		return fmt.Errorf("producing to %q: %w", topic, failed())
	case closeErr != nil:
		return fmt.Errorf("producing to %q: %w", topic, closeErr)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("stopped after %d lines: -timeout %v", n, e.timeout)
	}
	select {
	case err := <-readErr:
		if err != nil {
			return fmt.Errorf("reading stdin: %w", err)
		}
	default:
	}
	return nil
}

// readLines reads lines from r in a goroutine (stdin cannot be interrupted),
// each without its trailing newline, until the end of r or stop. The error
// of r, if any, arrives on the error channel after lines is closed.
func readLines(r io.Reader) (lines <-chan []byte, readErr <-chan error, stop func()) {
	ch := make(chan []byte, 256)
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(ch)
		br := bufio.NewReaderSize(r, 64<<10)
		for {
			line, err := br.ReadBytes('\n')
			if n := len(line); n > 0 && line[n-1] == '\n' {
				line = line[:n-1]
			} else if len(line) == 0 && err != nil {
				if err != io.EOF {
					errc <- err
				}
				return
			}
			select {
			case ch <- line:
			case <-done:
				return
			}
			if err != nil {
				if err != io.EOF {
					errc <- err
				}
				return
			}
		}
	}()
	var once sync.Once
	return ch, errc, func() { once.Do(func() { close(done) }) }
}
