package kpax

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"
)

// An Option configures a Client, a Producer, a Consumer, a GroupConsumer or
// a ShareConsumer.
// Options are applied in order by the constructor they are passed to, which
// then validates the whole configuration: a bad option is an error from the
// constructor, never a panic.
//
// Every option has a scope, named at the end of its documentation, which says
// where it may be passed:
//
//   - a client option ("Client option.") goes to New only;
//   - a producer option goes to Client.NewProducer, or to New as the
//     default of every producer of the client;
//   - a consumer option goes to Client.NewConsumer or
//     Client.NewGroupConsumer (a group member fetches like a Consumer), or
//     to New as the default of every consumer of the client;
//   - a group option goes to Client.NewGroupConsumer, or to New as the
//     default of every group member of the client;
//   - a share option goes to Client.NewShareConsumer, or to New as the
//     default of every share consumer of the client. The fetch options
//     WithFetchMaxWait, WithFetchMinBytes and WithFetchMaxBytes are both
//     consumer and share options.
//
// An option passed where it does not apply is an error (matched by
// errors.Is with ErrMisappliedOption) that names the option and where it
// belongs, e.g. "WithSeedBrokers is a client option: pass it to kpax.New".
type Option func(*config)

// ErrMisappliedOption is matched (errors.Is) by the error of a constructor
// given an option of another scope, e.g. a client option passed to
// Client.NewProducer (see Option).
var ErrMisappliedOption = classedValue(ClassAbortable, "option does not apply here")

// scope is the set of constructors an option applies to (see Option).
type scope uint8

const (
	scopeClient scope = 1 << iota
	scopeProducer
	scopeConsumer
	scopeGroup
	scopeShare

	scopeAll = scopeClient | scopeProducer | scopeConsumer | scopeGroup | scopeShare
)

// in marks the option being applied, named name, as one of scope s; every
// Option calls it first.
func (c *config) in(s scope, name string) { c.optScope, c.optName = s, name }

// misapplied describes an option of scope s passed to a constructor it
// does not apply to.
func misapplied(name string, s scope) error {
	var where string
	switch {
	case s&scopeClient != 0:
		where = "a client option: pass it to kpax.New"
	case s&scopeProducer != 0:
		where = "a producer option: pass it to Client.NewProducer (or to kpax.New, for every producer)"
	case s&scopeConsumer != 0:
		where = "a consumer option: pass it to Client.NewConsumer or Client.NewGroupConsumer (or to kpax.New, for every consumer)"
	case s&scopeShare != 0:
		where = "a share option: pass it to Client.NewShareConsumer (or to kpax.New, for every share consumer)"
	default:
		where = "a group option: pass it to Client.NewGroupConsumer (or to kpax.New, for every group member)"
	}
	return fmt.Errorf("%w: %s is %s", ErrMisappliedOption, name, where)
}

// config is the whole configuration of a Client. It is filled by
// defaultConfig, changed by Options and checked by validate; after New it is
// never written again.
type config struct {
	seeds           []string
	clientID        string
	dialTimeout     time.Duration
	requestTimeout  time.Duration
	dialer          func(ctx context.Context, network, addr string) (net.Conn, error)
	tls             *tls.Config
	sasl            SASLMechanism
	logger          *slog.Logger
	maxVersions     map[int16]int16
	rack            string
	metadataMaxAge  time.Duration
	metadataMinAge  time.Duration
	retryBackoff    time.Duration
	retryBackoffMax time.Duration
	hooks           Hooks
	softwareName    string
	softwareVer     string
	// maxResponseBytes bounds a response frame (WithMaxResponseBytes, conn.go).
	maxResponseBytes int
	// frames is set by New: the client's pool of Fetch response buffers (conn.go).
	frames *framePool
	// memBudget is WithMemoryBudget's bytes; budget, set by New, counts
	// them for every producer and consumer of the client (budget.go).
	memBudget int
	budget    *memBudget

	// The scope and name of the option last applied (see config.in).
	optScope scope
	optName  string

	producer producerConfig // produce.go
	consumer consumerConfig // consume.go
	group    groupConfig    // group.go
	share    shareConfig    // share.go
}

func defaultConfig() config {
	return config{
		clientID:         "kpax",
		dialTimeout:      10 * time.Second,
		requestTimeout:   30 * time.Second,
		logger:           slog.New(discardHandler{}),
		metadataMaxAge:   5 * time.Minute,
		metadataMinAge:   100 * time.Millisecond,
		retryBackoff:     100 * time.Millisecond,
		retryBackoffMax:  5 * time.Second,
		softwareName:     "kpax",
		softwareVer:      "0.1.0",
		maxResponseBytes: DefaultMaxResponseBytes,
		producer:         defaultProducerConfig(),
		consumer:         defaultConsumerConfig(),
		group:            defaultGroupConfig(),
		share:            defaultShareConfig(),
	}
}

// applyOptions returns base changed by opts, validated, for New: options of
// every scope apply.
func applyOptions(base config, opts []Option) (config, error) {
	return applyOptionsFor(base, opts, scopeAll)
}

// applyOptionsFor returns base changed by opts, validated, for a
// constructor that takes options of the scopes in allowed: Producers and
// consumers start from their client's config and apply their own options.
// An option of another scope is an error.
func applyOptionsFor(base config, opts []Option, allowed scope) (config, error) {
	var errs []error
	for _, o := range opts {
		if o == nil {
			errs = append(errs, errors.New("nil Option"))
			continue
		}
		base.optScope = 0
		o(&base)
		if base.optScope != 0 && base.optScope&allowed == 0 {
			errs = append(errs, misapplied(base.optName, base.optScope))
		}
	}
	base.optScope, base.optName = 0, ""
	if len(errs) > 0 {
		return base, fmt.Errorf("kpax: bad options: %w", errors.Join(errs...))
	}
	if err := base.validate(); err != nil {
		return base, err
	}
	return base, nil
}

func (c *config) validate() error {
	var errs []error
	if len(c.seeds) == 0 {
		errs = append(errs, errors.New("no seed brokers: use WithSeedBrokers"))
	}
	for _, s := range c.seeds {
		host, port, err := net.SplitHostPort(s)
		if err != nil || host == "" {
			errs = append(errs, fmt.Errorf("seed broker %q: want host:port", s))
			continue
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			errs = append(errs, fmt.Errorf("seed broker %q: bad port", s))
		}
	}
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, not %v", name, d))
		}
	}
	positive("dial timeout", c.dialTimeout)
	positive("request timeout", c.requestTimeout)
	positive("metadata max age", c.metadataMaxAge)
	positive("retry backoff", c.retryBackoff)
	if c.metadataMinAge < 0 || c.metadataMinAge > c.metadataMaxAge {
		errs = append(errs, fmt.Errorf("metadata min age %v must be within 0 and the max age %v", c.metadataMinAge, c.metadataMaxAge))
	}
	if c.retryBackoffMax < c.retryBackoff {
		errs = append(errs, fmt.Errorf("max retry backoff %v is below the retry backoff %v", c.retryBackoffMax, c.retryBackoff))
	}
	if c.logger == nil {
		errs = append(errs, errors.New("nil logger"))
	}
	if m, ok := c.sasl.(interface{ validate() error }); ok {
		if err := m.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(c.clientID) > 32767 {
		errs = append(errs, errors.New("client ID longer than 32767 bytes"))
	}
	for key, v := range c.maxVersions {
		if NewRequest(key) == nil {
			errs = append(errs, fmt.Errorf("max version for unknown API key %d", key))
		} else if v < 0 {
			errs = append(errs, fmt.Errorf("max version %d for %s is negative", v, APIName(key)))
		}
	}
	if c.maxResponseBytes < 64<<10 || c.maxResponseBytes > maxFrameSize || c.maxResponseBytes < int(c.consumer.maxBytes) {
		errs = append(errs, fmt.Errorf("max response bytes %d: want 64 KiB to 1 GiB, and at least the fetch max bytes (%d)", c.maxResponseBytes, c.consumer.maxBytes))
	}
	if err := validateMemoryBudget(c.memBudget); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.producer.validate()...)
	errs = append(errs, c.consumer.validate()...)
	errs = append(errs, c.group.validate()...)
	errs = append(errs, c.share.validate()...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kpax: bad options: %w", err)
	}
	return nil
}

// WithSeedBrokers sets the brokers ("host:port") the client first asks for
// metadata. At least one is required; there is no default. Client option.
func WithSeedBrokers(addrs ...string) Option {
	return func(c *config) { c.in(scopeClient, "WithSeedBrokers"); c.seeds = append([]string(nil), addrs...) }
}

// WithClientID sets the client ID sent with every request, which brokers use
// in logs, metrics and quotas. Default: "kpax". Client option.
func WithClientID(id string) Option {
	return func(c *config) { c.in(scopeClient, "WithClientID"); c.clientID = id }
}

// WithDialTimeout bounds connecting to a broker, including TLS, version
// negotiation and SASL. Default: 10s. Client option.
func WithDialTimeout(d time.Duration) Option {
	return func(c *config) { c.in(scopeClient, "WithDialTimeout"); c.dialTimeout = d }
}

// WithRequestTimeout bounds the wait for each response, beyond any timeout
// carried by the request itself (a Fetch's MaxWaitMs, a JoinGroup's
// rebalance timeout, a Produce's TimeoutMs), which is added to it. A request
// that times out closes its connection: its waiting requests fail, the next
// one dials again. Default: 30s. Client option.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *config) { c.in(scopeClient, "WithRequestTimeout"); c.requestTimeout = d }
}

// WithDialer sets the function that opens TCP connections, e.g. a
// (*net.Dialer).DialContext with custom settings, or a proxy. Default: a
// net.Dialer with keep-alives. Client option.
func WithDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(c *config) { c.in(scopeClient, "WithDialer"); c.dialer = dial }
}

// WithTLS makes every connection use TLS with the configuration (cloned; a
// missing ServerName is set to the broker's host). Default: plain TCP.
// Client option.
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) {
		c.in(scopeClient, "WithTLS")
		if cfg != nil {
			cfg = cfg.Clone()
		}
		c.tls = cfg
	}
}

// WithSASL authenticates every connection with the mechanism (SASLPlain,
// SASLScramSHA256, SASLScramSHA512), after TLS when TLS is configured: no
// credential goes out before the TLS handshake has verified the broker.
// Default: none. Client option.
func WithSASL(m SASLMechanism) Option {
	return func(c *config) { c.in(scopeClient, "WithSASL"); c.sasl = m }
}

// WithLogger sets the logger for connection, metadata and retry events.
// Default: a logger that discards everything. Client option.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.in(scopeClient, "WithLogger"); c.logger = l }
}

// WithMaxVersion caps the version used for an API key, e.g. to talk as an
// older client would. By default each request uses the newest version both
// the broker and this package support. Client option.
func WithMaxVersion(key int16, version int16) Option {
	return func(c *config) {
		c.in(scopeClient, "WithMaxVersion")
		m := make(map[int16]int16, len(c.maxVersions)+1)
		for k, v := range c.maxVersions {
			m[k] = v
		}
		m[key] = version
		c.maxVersions = m
	}
}

// WithRack sets the client's rack, sent in Fetch requests so that brokers can
// point consumers at a replica in the same rack (KIP-392). Default: none.
// Client option.
func WithRack(rack string) Option {
	return func(c *config) { c.in(scopeClient, "WithRack"); c.rack = rack }
}

// WithMetadataMaxAge sets how old cached metadata may grow before it is
// refreshed in the background. Default: 5m. Client option.
func WithMetadataMaxAge(d time.Duration) Option {
	return func(c *config) { c.in(scopeClient, "WithMetadataMaxAge"); c.metadataMaxAge = d }
}

// WithMetadataMinAge sets the shortest time between two metadata refreshes,
// however many errors ask for one. A lookup of a topic the client has never
// looked up does not wait for it (its retries do). Default: 100ms. Client
// option.
func WithMetadataMinAge(d time.Duration) Option {
	return func(c *config) { c.in(scopeClient, "WithMetadataMinAge"); c.metadataMinAge = d }
}

// WithRetryBackoff sets the first and the longest wait between retries of a
// failed dial or request; waits double from min to max. Defaults: 100ms, 5s.
// Client option.
func WithRetryBackoff(min, max time.Duration) Option {
	return func(c *config) { c.in(scopeClient, "WithRetryBackoff"); c.retryBackoff, c.retryBackoffMax = min, max }
}

// WithHooks sets functions called on connection and request events, for
// metrics. Default: none. Client option.
func WithHooks(h Hooks) Option {
	return func(c *config) { c.in(scopeClient, "WithHooks"); c.hooks = h }
}

// discardHandler is a slog.Handler that drops every record.
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }
