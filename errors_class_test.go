package kpax

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestClassOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want ErrorClass
	}{
		{"nil", nil, ClassNone},
		// Kafka codes: retriable where the guide says so.
		{"NOT_LEADER_OR_FOLLOWER", ErrNotLeaderOrFollower, ClassRetriable},
		{"COORDINATOR_LOAD_IN_PROGRESS", ErrCoordinatorLoadInProgress, ClassRetriable},
		{"CONCURRENT_TRANSACTIONS", ErrConcurrentTransactions, ClassRetriable},
		{"NOT_ENOUGH_REPLICAS", ErrNotEnoughReplicas, ClassRetriable},
		{"REQUEST_TIMED_OUT", ErrRequestTimedOut, ClassRetriable},
		{"UNSTABLE_OFFSET_COMMIT", ErrUnstableOffsetCommit, ClassRetriable},
		{"REBALANCE_IN_PROGRESS (override)", ErrRebalanceInProgress, ClassRetriable},
		// Abortable: the operation fails again as is; the client is fine.
		{"MESSAGE_TOO_LARGE", ErrMessageTooLarge, ClassAbortable},
		{"TOPIC_AUTHORIZATION_FAILED", ErrTopicAuthorizationFailed, ClassAbortable},
		{"INVALID_RECORD", ErrInvalidRecord, ClassAbortable},
		{"INVALID_PRODUCER_EPOCH", ErrInvalidProducerEpoch, ClassAbortable},
		{"OUT_OF_ORDER_SEQUENCE_NUMBER", ErrOutOfOrderSequenceNumber, ClassAbortable},
		{"ILLEGAL_GENERATION", ErrIllegalGeneration, ClassAbortable},
		{"TRANSACTION_ABORTABLE", ErrTransactionAbortable, ClassAbortable},
		{"UNKNOWN_SERVER_ERROR", ErrUnknownServerError, ClassAbortable},
		{"unknown code", ErrorForCode(9999), ClassAbortable},
		// Fatal: the producer, consumer or client is unusable.
		{"PRODUCER_FENCED", ErrProducerFenced, ClassFatal},
		{"FENCED_INSTANCE_ID", ErrFencedInstanceId, ClassFatal},
		{"TRANSACTIONAL_ID_AUTHORIZATION_FAILED", ErrTransactionalIdAuthorizationFailed, ClassFatal},
		{"CLUSTER_AUTHORIZATION_FAILED", ErrClusterAuthorizationFailed, ClassFatal},
		{"GROUP_AUTHORIZATION_FAILED", ErrGroupAuthorizationFailed, ClassFatal},
		{"SASL_AUTHENTICATION_FAILED", ErrSaslAuthenticationFailed, ClassFatal},
		{"UNSUPPORTED_VERSION", ErrUnsupportedVersion, ClassFatal},
		{"INVALID_TRANSACTION_TIMEOUT", ErrInvalidTransactionTimeout, ClassFatal},
		// The client's own errors.
		{"client closed", ErrClientClosed, ClassFatal},
		{"producer closed", ErrProducerClosed, ClassFatal},
		{"consumer closed", ErrConsumerClosed, ClassFatal},
		{"maybe persisted closed", fmt.Errorf("%w: %w", ErrMaybePersisted, ErrProducerClosed), ClassFatal},
		{"maybe persisted", fmt.Errorf("%w: %w", ErrMaybePersisted, errors.New("x")), ClassRetriable},
		{"broker error", &BrokerError{NodeID: 1, Addr: "h:1", Err: errors.New("connection refused")}, ClassRetriable},
		{"broker SASL failure", &BrokerError{NodeID: 1, Addr: "h:1", Err: ErrSaslAuthenticationFailed}, ClassFatal},
		{"no broker", ErrNoBroker, ClassRetriable},
		{"response timeout", ErrResponseTimeout, ClassRetriable},
		{"malformed", fmt.Errorf("%w: short", ErrMalformed), ClassRetriable},
		{"context canceled", context.Canceled, ClassRetriable},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), ClassRetriable},
		{"bad argument", errors.New("kpax: record without a topic"), ClassAbortable},
		// Partition errors look through to the code.
		{"partition error", &PartitionError{Topic: "t", Partition: 1, Err: ErrNotLeaderOrFollower}, ClassRetriable},
		// Transactions classify where they return, overriding the code.
		{"no transaction", withClass(ClassAbortable, ErrNoTransaction), ClassAbortable},
		{"classified fencing", withClass(ClassFatal, &PartitionError{Topic: "t", Err: ErrInvalidProducerEpoch}), ClassFatal},
		{"wrapped classified", fmt.Errorf("outer: %w", withClass(ClassAbortable, ErrProducerFenced)), ClassAbortable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ClassOf(tt.err); got != tt.want {
				t.Errorf("ClassOf(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestClassOfEveryCode checks that every Kafka code has a class, and that
// the guide's retriable codes are retriable.
func TestClassOfEveryCode(t *testing.T) {
	counts := map[ErrorClass]int{}
	for code := int16(-1); code < 130; code++ {
		err := ErrorForCode(code)
		if err == nil {
			continue
		}
		c := ClassOf(err)
		counts[c]++
		if c == ClassNone || c > ClassFatal {
			t.Errorf("code %d: class %v", code, c)
		}
		if IsRetriable(err) && c != ClassRetriable {
			t.Errorf("code %d (%v) is retriable in the guide, class %v", code, err, c)
		}
	}
	t.Logf("classes of the Kafka codes: %v", counts)
}

func TestClassedErrorKeepsCause(t *testing.T) {
	err := withClass(ClassFatal, fmt.Errorf("kpax: x: %w", ErrProducerFenced))
	if !errors.Is(err, ErrProducerFenced) || !strings.Contains(err.Error(), "PRODUCER_FENCED") {
		t.Fatalf("classified error lost its cause: %v", err)
	}
	if withClass(ClassFatal, nil) != nil {
		t.Fatal("withClass(nil) is not nil")
	}
	if got := ErrorClass(9).String(); got != "ErrorClass(9)" {
		t.Fatalf("String: %q", got)
	}
}

func TestTxnOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want string // "" for valid
	}{
		{"ok", []Option{WithTransactionalID("a")}, ""},
		{"timeout", []Option{WithTransactionalID("a"), WithTransactionTimeout(time.Second)}, ""},
		{"empty id", []Option{WithTransactionalID("")}, "transactional ID"},
		{"long id", []Option{WithTransactionalID(strings.Repeat("x", 40000))}, "transactional ID"},
		{"no idempotence", []Option{WithTransactionalID("a"), WithIdempotence(false)}, "needs idempotence"},
		{"acks 1", []Option{WithTransactionalID("a"), WithAcks(1)}, "needs idempotence"},
		{"zero timeout", []Option{WithTransactionalID("a"), WithTransactionTimeout(0)}, "transaction timeout"},
		{"huge timeout", []Option{WithTransactionTimeout(1000 * time.Hour)}, "transaction timeout"},
	}
	cl, err := New(WithSeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := cl.NewProducer(tt.opts...)
			if p != nil {
				defer p.Close(context.Background())
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestTxnMisuseOffline checks the calls that need no broker: a plain
// producer refuses transaction calls, and a transactional one refuses
// records and ends outside a transaction, queueing nothing.
func TestTxnMisuseOffline(t *testing.T) {
	cl, err := New(WithSeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	plain, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close(ctx)
	for name, call := range map[string]func(context.Context) error{
		"Begin": plain.BeginTransaction, "Commit": plain.CommitTransaction, "Abort": plain.AbortTransaction,
	} {
		if err := call(ctx); !errors.Is(err, ErrNotTransactional) || ClassOf(err) != ClassAbortable {
			t.Errorf("%s on a plain producer: %v", name, err)
		}
	}
	if _, err := cl.NewGroupTransactSession(plain, "g", []string{"t"}); !errors.Is(err, ErrNotTransactional) {
		t.Errorf("session on a plain producer: %v", err)
	}
	p, err := cl.NewProducer(WithTransactionalID("offline"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Produce(ctx, &Record{Topic: "t"}, nil); !errors.Is(err, ErrNoTransaction) {
		t.Errorf("Produce outside a transaction: %v", err)
	}
	if err := p.ProduceSync(ctx, &Record{Topic: "t"}); !errors.Is(err, ErrNoTransaction) {
		t.Errorf("ProduceSync outside a transaction: %v", err)
	}
	if err := p.CommitTransaction(ctx); !errors.Is(err, ErrNoTransaction) {
		t.Errorf("Commit without a transaction: %v", err)
	}
	if err := p.SendOffsetsToTransaction(ctx, nil); err == nil {
		t.Error("SendOffsetsToTransaction(nil) accepted")
	}
	if err := p.Flush(ctx); err != nil {
		t.Errorf("Flush: %v (something was queued)", err)
	}
	p.Close(ctx)
	if err := p.BeginTransaction(ctx); !errors.Is(err, ErrProducerClosed) || ClassOf(err) != ClassFatal {
		t.Errorf("Begin after Close: %v", err)
	}
}

// classErrorsOf returns the class errors err matches.
func classErrorsOf(err error) []ErrorClass {
	var got []ErrorClass
	for _, c := range []ErrorClass{ClassRetriable, ClassAbortable, ClassFatal} {
		if errors.Is(err, classError(c)) {
			got = append(got, c)
		}
	}
	return got
}

// checkExactClass fails unless err matches exactly one class error, the
// class ClassOf gives.
func checkExactClass(t *testing.T, name string, err error) {
	t.Helper()
	want := ClassOf(err)
	got := classErrorsOf(err)
	if len(got) != 1 || got[0] != want {
		t.Errorf("%s (%v): errors.Is matches %v, ClassOf says %v", name, err, got, want)
	}
}

// packageErrorValues are the package's exported error values, other than
// the Kafka codes (TestClassErrorValuesListed keeps the list complete).
// ErrSASL and ErrResponseTooLarge only come inside a *BrokerError, and
// ErrShareAckFailed with its cause, whose class they take; their forms are
// in TestClassErrors.
var packageErrorValues = map[string]error{
	"ErrClientClosed": ErrClientClosed, "ErrResponseTimeout": ErrResponseTimeout, "ErrNoBroker": ErrNoBroker,
	"ErrInvalidArgument": ErrInvalidArgument, "ErrMissingResult": ErrMissingResult, "ErrBadRequest": ErrBadRequest,
	"ErrDecompressedTooLarge": ErrDecompressedTooLarge, "ErrCorruptCompressed": ErrCorruptCompressed,
	"ErrLogTruncated": ErrLogTruncated, "ErrConsumerClosed": ErrConsumerClosed, "ErrProcessStarted": ErrProcessStarted,
	"ErrMisappliedOption": ErrMisappliedOption, "ErrMaybePersisted": ErrMaybePersisted, "ErrProducerClosed": ErrProducerClosed,
	"ErrCorruptRecords": ErrCorruptRecords, "ErrShareUnacknowledged": ErrShareUnacknowledged,
	"ErrShareAcknowledged": ErrShareAcknowledged, "ErrShareForeignRecord": ErrShareForeignRecord, "ErrNotTransactional": ErrNotTransactional,
	"ErrNoTransaction": ErrNoTransaction, "ErrTransactionOpen": ErrTransactionOpen, "ErrTransactionBusy": ErrTransactionBusy,
	"ErrTransactionAborted": ErrTransactionAborted, "ErrMalformed": ErrMalformed,
	"ErrRetriable": ErrRetriable, "ErrAbortable": ErrAbortable, "ErrFatal": ErrFatal,
}

// TestClassErrorValuesListed checks that packageErrorValues lists every
// exported error value declared outside protocol_gen.go.
func TestClassErrorValuesListed(t *testing.T) {
	markers := map[string]bool{"ErrSASL": true, "ErrResponseTooLarge": true, "ErrShareAckFailed": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	decl := regexp.MustCompile(`(?m)^\s*(?:var\s+)?(Err[A-Z]\w*)(?:\s+error)?\s*=`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "protocol_gen.go" {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range decl.FindAllSubmatch(src, -1) {
			name := string(m[1])
			if _, ok := packageErrorValues[name]; !ok && !markers[name] {
				t.Errorf("%s: error value %s is not in packageErrorValues", f, name)
			}
		}
	}
}

// TestClassErrors checks that errors.Is(err, ErrRetriable / ErrAbortable /
// ErrFatal) holds exactly for ClassOf's class: every Kafka code, every
// error value of the package, bare, wrapped, joined with errors of the
// same class and inside the package's error types, and the composite
// errors the package builds.
func TestClassErrors(t *testing.T) {
	forms := func(name string, err error) map[string]error {
		return map[string]error{
			name:                 err,
			name + " wrapped":    fmt.Errorf("kpax: x: %w", err),
			name + " joined":     errors.Join(err, fmt.Errorf("again: %w", err)),
			name + " partition":  &PartitionError{Topic: "t", Partition: 1, Err: err},
			name + " group":      &GroupError{Group: "g", Op: "OffsetCommit", Err: err},
			name + " item":       &ItemError{Item: "x", Err: err},
			name + " admin":      &AdminError{Op: "op", Total: 2, Errors: []error{&ItemError{Item: "a", Err: err}, &ItemError{Item: "b", Err: err}}},
			name + " process":    &ProcessError{Topic: "t", Err: err},
			name + " classified": classify(fmt.Errorf("%w: %w", err, ErrProducerFenced)),
		}
	}
	all := map[string]error{}
	for code := int16(-1); code < 130; code++ {
		if err := ErrorForCode(code); err != nil {
			maps.Copy(all, forms(err.(*Error).Name(), err))
		}
	}
	for name, err := range packageErrorValues {
		maps.Copy(all, forms(name, err))
	}
	netErr := errors.New("connection refused")
	for name, err := range map[string]error{
		"broker network":            &BrokerError{NodeID: 1, Addr: "h:1", Err: netErr},
		"broker SASL network":       &BrokerError{NodeID: 1, Addr: "h:1", Err: fmt.Errorf("%w: PLAIN: %w", ErrSASL, netErr)},
		"broker SASL failed":        &BrokerError{NodeID: 1, Addr: "h:1", Err: fmt.Errorf("%w: PLAIN: %w", ErrSASL, ErrSaslAuthenticationFailed)},
		"broker response too large": &BrokerError{NodeID: 1, Addr: "h:1", Err: fmt.Errorf("%w: 9 bytes", ErrResponseTooLarge)},
		"broker closed":             &BrokerError{NodeID: 1, Addr: "h:1", Err: ErrClientClosed},
		"broker no broker":          &BrokerError{NodeID: 1, Addr: "h:1", Err: fmt.Errorf("%w: next dial in 1s", ErrNoBroker)},
		"broker fenced code":        &BrokerError{NodeID: 1, Addr: "h:1", Err: ErrProducerFenced},
		"corrupt records":           &CorruptRecordsError{Reason: "bad CRC"},
		"corrupt records, cause":    &CorruptRecordsError{Reason: "gzip", Err: fmt.Errorf("%w: gzip: %w", ErrCorruptCompressed, netErr)},
		"plain partition error":     &PartitionError{Topic: "t", Err: netErr},
		"admin mixed, no class":     &AdminError{Op: "op", Errors: []error{netErr, errors.New("y")}},
		"maybe persisted closed":    classify(fmt.Errorf("%w: %w", ErrMaybePersisted, ErrProducerClosed)),
		"maybe persisted network":   classify(fmt.Errorf("%w: %w", ErrMaybePersisted, &BrokerError{Err: netErr})),
		"maybe persisted aborted":   classify(fmt.Errorf("%w: %w", ErrMaybePersisted, withClass(ClassAbortable, ErrTransactionAborted))),
		"maybe persisted too large": classify(fmt.Errorf("%w: %w", ErrMaybePersisted, ErrMessageTooLarge)),
		"aborted by a fatal":        withClass(ClassAbortable, fmt.Errorf("%w: %w", ErrTransactionAborted, ErrProducerFenced)),
		"fatal of an abortable":     withClass(ClassFatal, &PartitionError{Topic: "t", Err: ErrInvalidProducerEpoch}),
		"wrapped classified":        fmt.Errorf("outer: %w", withClass(ClassAbortable, ErrProducerFenced)),
		"classified context":        classify(context.Canceled),
		"classified deadline":       classify(fmt.Errorf("x: %w", context.DeadlineExceeded)),
		"classified bad argument":   classify(errors.New("kpax: record without a topic")),
		"classified mixed join":     classify(errors.Join(ErrNotLeaderOrFollower, ErrProducerFenced)),
		"classified twice":          classify(classify(ErrNoBroker)),
		"share ack failed":          &PartitionError{Topic: "t", Err: fmt.Errorf("%w: %w", ErrShareAckFailed, ErrInvalidRecordState)},
	} {
		all[name] = err
	}
	for name, err := range all {
		checkExactClass(t, name, err)
	}
	// The classified forms keep their causes.
	err := classify(fmt.Errorf("%w: %w", ErrMaybePersisted, &PartitionError{Topic: "t", Err: ErrNotLeaderOrFollower}))
	var pe *PartitionError
	if !errors.Is(err, ErrMaybePersisted) || !errors.Is(err, ErrNotLeaderOrFollower) || !errors.As(err, &pe) || pe.Topic != "t" {
		t.Errorf("classified error lost its causes: %v", err)
	}
	if classify(nil) != nil {
		t.Error("classify(nil) is not nil")
	}
	t.Logf("%d errors checked", len(all))
}

// TestClassErrorsOfTheAPI checks the errors of the producer's calls that
// return without a broker: each matches exactly ClassOf's class error.
func TestClassErrorsOfTheAPI(t *testing.T) {
	f := newFakeCluster(t, 1, nil)
	cl, err := New(WithSeedBrokers(f.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	p, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	var w ProduceWaiter
	var nilCtx context.Context
	errs := map[string]error{
		"nil record":        p.Produce(ctx, nil, nil),
		"no topic":          p.Produce(ctx, &Record{}, nil),
		"nil context":       p.Produce(nilCtx, &Record{Topic: "t"}, nil),
		"too large":         p.Produce(ctx, &Record{Topic: "t", Value: make([]byte, 2<<20)}, nil),
		"not transactional": p.BeginTransaction(ctx),
		"no transaction":    p.CommitTransaction(ctx),
		"waiter nil":        w.Produce(ctx, nil, &Record{Topic: "t"}),
		"flush nil ctx":     p.Flush(nilCtx),
	}
	w.Produce(ctx, p, &Record{Topic: "t"})
	errs["waiter canceled"] = w.Wait(canceled)
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	errs["closed"] = p.Produce(ctx, &Record{Topic: "t"}, nil)
	errs["closed begin"] = p.BeginTransaction(ctx)
	for name, err := range errs {
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		checkExactClass(t, name, err)
	}
	if got := ClassOf(errs["waiter canceled"]); got != ClassRetriable || !errors.Is(errs["waiter canceled"], context.Canceled) {
		t.Errorf("canceled Wait: %v, class %v", errs["waiter canceled"], got)
	}
}
