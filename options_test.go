package kpax

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// scopedOptions is every exported option with its scope and a valid value.
// TestEveryOptionScoped keeps it complete.
var scopedOptions = []struct {
	name  string
	scope scope
	opt   Option
}{
	{"WithSeedBrokers", scopeClient, WithSeedBrokers("127.0.0.1:1")},
	{"WithClientID", scopeClient, WithClientID("x")},
	{"WithDialTimeout", scopeClient, WithDialTimeout(time.Second)},
	{"WithRequestTimeout", scopeClient, WithRequestTimeout(time.Second)},
	{"WithDialer", scopeClient, WithDialer((&net.Dialer{}).DialContext)},
	{"WithMaxResponseBytes", scopeClient, WithMaxResponseBytes(DefaultMaxResponseBytes)},
	{"WithTLS", scopeClient, WithTLS(nil)},
	{"WithSASL", scopeClient, WithSASL(nil)},
	{"WithLogger", scopeClient, WithLogger(slog.New(discardHandler{}))},
	{"WithMaxVersion", scopeClient, WithMaxVersion(0, 3)},
	{"WithRack", scopeClient, WithRack("r")},
	{"WithMetadataMaxAge", scopeClient, WithMetadataMaxAge(time.Minute)},
	{"WithMetadataMinAge", scopeClient, WithMetadataMinAge(time.Millisecond)},
	{"WithRetryBackoff", scopeClient, WithRetryBackoff(time.Millisecond, time.Second)},
	{"WithHooks", scopeClient, WithHooks(Hooks{})},
	{"WithMemoryBudget", scopeClient, WithMemoryBudget(64 << 20)},

	{"WithAcks", scopeProducer, WithAcks(AcksLeader)},
	{"WithLinger", scopeProducer, WithLinger(time.Millisecond)},
	{"WithMaxBatchBytes", scopeProducer, WithMaxBatchBytes(1 << 16)},
	{"WithMaxInFlight", scopeProducer, WithMaxInFlight(2)},
	{"WithCompression", scopeProducer, WithCompression(CompressionLZ4)},
	{"WithTransactionalID", scopeProducer, WithTransactionalID("kpax-options-test")},
	{"WithTransactionTimeout", scopeProducer, WithTransactionTimeout(time.Minute)},
	{"WithCompressionLevel", scopeProducer, WithCompressionLevel(CompressionGzip, 9)},
	{"WithProduceTimeout", scopeProducer, WithProduceTimeout(time.Second)},
	{"WithDeliveryTimeout", scopeProducer, WithDeliveryTimeout(time.Minute)},
	{"WithMaxBufferedRecords", scopeProducer, WithMaxBufferedRecords(10)},
	{"WithMaxBufferedBytes", scopeProducer, WithMaxBufferedBytes(64 << 20)},
	{"WithIdempotence", scopeProducer, WithIdempotence(true)},
	{"WithPartitioner", scopeProducer, WithPartitioner(RoundRobinPartitioner())},
	{"WithOnPartitionsChanged", scopeProducer, WithOnPartitionsChanged(func(string, int, int) {})},
	{"WithPartitionAvoidance", scopeProducer, WithPartitionAvoidance(time.Second)},

	{"WithFetchMaxWait", scopeConsumer | scopeShare, WithFetchMaxWait(time.Second)},
	{"WithFetchMinBytes", scopeConsumer | scopeShare, WithFetchMinBytes(1)},
	{"WithFetchMaxBytes", scopeConsumer | scopeShare, WithFetchMaxBytes(1 << 20)},
	{"WithFetchMaxPartitionBytes", scopeConsumer, WithFetchMaxPartitionBytes(1 << 20)},
	{"WithFetchBufferBytes", scopeConsumer, WithFetchBufferBytes(1 << 20)},
	{"WithIsolationLevel", scopeConsumer, WithIsolationLevel(ReadCommitted)},
	{"WithOffsetReset", scopeConsumer, WithOffsetReset(ResetLatest)},

	{"WithSessionTimeout", scopeGroup, WithSessionTimeout(10 * time.Second)},
	{"WithRebalanceTimeout", scopeGroup, WithRebalanceTimeout(10 * time.Second)},
	{"WithHeartbeatInterval", scopeGroup, WithHeartbeatInterval(time.Second)},
	{"WithInstanceID", scopeGroup, WithInstanceID("i")},
	{"WithBalancers", scopeGroup, WithBalancers(RangeBalancer())},
	{"WithAutoCommit", scopeGroup, WithAutoCommit(0)},
	{"WithOnAssigned", scopeGroup, WithOnAssigned(nil)},
	{"WithOnRevoked", scopeGroup, WithOnRevoked(nil)},
	{"WithOnLost", scopeGroup, WithOnLost(nil)},
	{"WithGroupProtocol", scopeGroup, WithGroupProtocol(ClassicGroupProtocol)},
	{"WithStartOffset", scopeGroup, WithStartOffset(Latest())},

	{"WithShareAckMode", scopeShare, WithShareAckMode(ShareAckExplicit)},
	{"WithShareMaxRecords", scopeShare, WithShareMaxRecords(10)},
	{"WithShareAcquireMode", scopeShare, WithShareAcquireMode(ShareAcquireRecordLimit)},
}

// TestOptionScopes passes every option to every constructor: it is
// accepted where its scope says, and elsewhere an error that names it and
// where it belongs.
func TestOptionScopes(t *testing.T) {
	cl := newTestClient(t, "127.0.0.1:1")
	ctors := []struct {
		name    string
		allowed scope
		make    func(Option) error
	}{
		{"New", scopeAll, func(o Option) error {
			c, err := New(WithSeedBrokers("127.0.0.1:1"), o)
			if err == nil {
				c.Close()
			}
			return err
		}},
		{"NewProducer", scopeProducer, func(o Option) error {
			p, err := cl.NewProducer(o)
			if err == nil {
				p.Close(context.Background())
			}
			return err
		}},
		{"NewConsumer", scopeConsumer, func(o Option) error {
			c, err := cl.NewConsumer(o)
			if err == nil {
				c.Close(context.Background())
			}
			return err
		}},
		{"NewGroupConsumer", scopeConsumer | scopeGroup, func(o Option) error {
			g, err := cl.NewGroupConsumer("g", []string{"t"}, o)
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				g.Close(ctx)
			}
			return err
		}},
		{"NewShareConsumer", scopeShare, func(o Option) error {
			s, err := cl.NewShareConsumer("g", []string{"t"}, o)
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				s.Close(ctx)
			}
			return err
		}},
	}
	where := map[scope]string{
		scopeClient:   "is a client option: pass it to kpax.New",
		scopeProducer: "is a producer option: pass it to Client.NewProducer",
		scopeConsumer: "is a consumer option: pass it to Client.NewConsumer or Client.NewGroupConsumer",
		scopeGroup:    "is a group option: pass it to Client.NewGroupConsumer",
		scopeShare:    "is a share option: pass it to Client.NewShareConsumer",
	}
	for _, ctor := range ctors {
		for _, o := range scopedOptions {
			err := ctor.make(o.opt)
			if o.scope&ctor.allowed != 0 {
				if err != nil {
					t.Errorf("%s(%s): %v", ctor.name, o.name, err)
				}
				continue
			}
			want := o.name + " " + where[o.scope&-o.scope] // the first scope names where it belongs
			if !errors.Is(err, ErrMisappliedOption) || !strings.Contains(err.Error(), want) {
				t.Errorf("%s(%s) = %v, want an ErrMisappliedOption saying %q", ctor.name, o.name, err, want)
			}
		}
	}
	// Every misapplied option is reported, not only the first.
	_, err := cl.NewProducer(WithSeedBrokers("h:1"), WithLinger(0), WithStartOffset(Latest()), nil)
	for _, want := range []string{"WithSeedBrokers", "WithStartOffset", "nil Option"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewProducer with three bad options: %v, want it to name %s", err, want)
		}
	}
}

// TestEveryOptionScoped: every exported function that returns an Option is
// in scopedOptions, and applying it records its scope and name.
func TestEveryOptionScoped(t *testing.T) {
	listed := map[string]bool{}
	for _, o := range scopedOptions {
		listed[o.name] = true
		var c config
		o.opt(&c)
		if c.optScope != o.scope {
			t.Errorf("%s records scope %b, want %b", o.name, c.optScope, o.scope)
		}
		if got := c.optName; got != o.name {
			t.Errorf("%s is named %q in errors", o.name, got)
		}
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || !fd.Name.IsExported() || fd.Type.Results == nil || len(fd.Type.Results.List) != 1 {
				continue
			}
			if id, ok := fd.Type.Results.List[0].Type.(*ast.Ident); ok && id.Name == "Option" && !listed[fd.Name.Name] {
				t.Errorf("%s (%s) returns an Option but is not in scopedOptions: give it a scope (config.in) and list it", fd.Name.Name, name)
			}
		}
	}
}
