package kpax

import (
	"context"
	"errors"
	"fmt"
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
