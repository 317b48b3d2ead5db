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

// An Option configures a Client. Options are applied in order by New, which
// then validates the whole configuration: a bad option is an error from New,
// never a panic.
type Option func(*config)

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

	producer producerConfig // produce.go
	consumer consumerConfig // consume.go
	group    groupConfig    // group.go
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
	}
}

// applyOptions returns base changed by opts, validated. Producers and
// consumers start from their client's config and apply their own options
// the same way.
func applyOptions(base config, opts []Option) (config, error) {
	for _, o := range opts {
		if o == nil {
			return base, errors.New("kpax: bad options: nil Option")
		}
		o(&base)
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
	errs = append(errs, c.producer.validate()...)
	errs = append(errs, c.consumer.validate()...)
	errs = append(errs, c.group.validate()...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kpax: bad options: %w", err)
	}
	return nil
}

// WithSeedBrokers sets the brokers ("host:port") the client first asks for
// metadata. At least one is required; there is no default.
func WithSeedBrokers(addrs ...string) Option {
	return func(c *config) { c.seeds = append([]string(nil), addrs...) }
}

// WithClientID sets the client ID sent with every request, which brokers use
// in logs, metrics and quotas. Default: "kpax".
func WithClientID(id string) Option { return func(c *config) { c.clientID = id } }

// WithDialTimeout bounds connecting to a broker, including TLS, version
// negotiation and SASL. Default: 10s.
func WithDialTimeout(d time.Duration) Option { return func(c *config) { c.dialTimeout = d } }

// WithRequestTimeout bounds the wait for each response, beyond any timeout
// carried by the request itself (a Fetch's MaxWaitMs, a JoinGroup's
// rebalance timeout, a Produce's TimeoutMs), which is added to it. A request
// that times out closes its connection: its waiting requests fail, the next
// one dials again. Default: 30s.
func WithRequestTimeout(d time.Duration) Option { return func(c *config) { c.requestTimeout = d } }

// WithDialer sets the function that opens TCP connections, e.g. a
// (*net.Dialer).DialContext with custom settings, or a proxy. Default: a
// net.Dialer with keep-alives.
func WithDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(c *config) { c.dialer = dial }
}

// WithTLS makes every connection use TLS with the configuration (cloned; a
// missing ServerName is set to the broker's host). Default: plain TCP.
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) {
		if cfg != nil {
			cfg = cfg.Clone()
		}
		c.tls = cfg
	}
}

// WithSASL authenticates every connection with the mechanism (SASLPlain,
// SASLScramSHA256, SASLScramSHA512), after TLS when TLS is configured: no
// credential goes out before the TLS handshake has verified the broker.
// Default: none.
func WithSASL(m SASLMechanism) Option { return func(c *config) { c.sasl = m } }

// WithLogger sets the logger for connection, metadata and retry events.
// Default: a logger that discards everything.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithMaxVersion caps the version used for an API key, e.g. to talk as an
// older client would. By default each request uses the newest version both
// the broker and this package support.
func WithMaxVersion(key int16, version int16) Option {
	return func(c *config) {
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
func WithRack(rack string) Option { return func(c *config) { c.rack = rack } }

// WithMetadataMaxAge sets how old cached metadata may grow before it is
// refreshed in the background. Default: 5m.
func WithMetadataMaxAge(d time.Duration) Option { return func(c *config) { c.metadataMaxAge = d } }

// WithMetadataMinAge sets the shortest time between two metadata refreshes,
// however many errors ask for one. Default: 100ms.
func WithMetadataMinAge(d time.Duration) Option { return func(c *config) { c.metadataMinAge = d } }

// WithRetryBackoff sets the first and the longest wait between retries of a
// failed dial or request; waits double from min to max. Defaults: 100ms, 5s.
func WithRetryBackoff(min, max time.Duration) Option {
	return func(c *config) { c.retryBackoff, c.retryBackoffMax = min, max }
}

// WithHooks sets functions called on connection and request events, for
// metrics. Default: none.
func WithHooks(h Hooks) Option { return func(c *config) { c.hooks = h } }

// discardHandler is a slog.Handler that drops every record.
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }
