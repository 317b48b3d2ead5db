package kpax

import (
	"errors"
	"fmt"
	"time"
)

// Brokers older than Kafka 0.10 have no ApiVersions. Sent one, a 0.8 broker
// closes the connection and a 0.9 broker leaves it unanswered (its network
// thread fails on the unknown API key and the connection stays muted). The
// client takes either for an old broker, within the request that found out,
// and talks v0 to it on a new connection.

// legacyEra says which kind of broker without ApiVersions a connection talks to.
type legacyEra int8

const (
	eraModern legacyEra = iota // it answers ApiVersions
	era08                      // it closed the connection on ApiVersions: Kafka 0.8
	era09                      // it left ApiVersions unanswered: Kafka 0.9
)

// legacyRecheck is how long a broker taken for one without ApiVersions gets
// v0 connections before a new connection asks it ApiVersions again: a closed
// or silent connection can also be a fault of a modern broker.
const legacyRecheck = 30 * time.Second

// errSilentBroker reports a broker that did not answer ApiVersions in time.
var errSilentBroker = errors.New("the broker did not answer ApiVersions: it may predate Kafka 0.10")

// legacyMark is what the client knows of a broker at an address.
type legacyMark struct {
	era   legacyEra
	until time.Time // for an old broker: when to ask ApiVersions again
}

// apiVersionsSilence bounds the wait for an ApiVersions answer: a broker
// still silent then is taken for Kafka 0.9 (if a v0 connection then works).
func apiVersionsSilence(cfg *config) time.Duration {
	return max(min(cfg.requestTimeout, cfg.dialTimeout)/2, 100*time.Millisecond)
}

// legacyVersions is what a broker without ApiVersions is taken to support:
// the API versions of its era (the protocol guide's "supported in 0.8.2 /
// 0.9.0"). 0.8.2 has produce, fetch, offsets, metadata, offset commit and
// fetch (v1: offsets kept in Kafka rather than ZooKeeper) and the
// coordinator lookup; 0.9 added v1 of produce and fetch (throttle times),
// OffsetCommit v2 and the group APIs. OffsetFetch goes as v1 on both: v0
// reads ZooKeeper, where a group coordinator's commits are not.
func legacyVersions(era legacyEra) apiVersions {
	v := newAPIVersions()
	v.legacy = true
	v.era = era
	for key, max := range legacyMax(era) {
		if max >= 0 {
			v.min[key], v.max[key] = 0, max
		}
	}
	return v
}

// legacyMax is the highest version of each API (by key, up to ListGroups;
// -1: none) that brokers of an era without ApiVersions take. Keys 4-7 are
// broker-to-broker.
func legacyMax(era legacyEra) [17]int16 {
	if era == era08 {
		return [17]int16{0, 0, 0, 0, -1, -1, -1, -1, 1, 1, 0, -1, -1, -1, -1, -1, -1}
	}
	return [17]int16{1, 1, 0, 0, -1, -1, -1, -1, 2, 1, 0, 0, 0, 0, 0, 0, 0}
}

// describe names the broker's Kafka version, as far as its API versions tell.
func (v *apiVersions) describe() string {
	switch {
	case v.era == era08:
		return "Kafka 0.8, before ApiVersions"
	case v.era == era09 || v.legacy:
		return "Kafka 0.9, before ApiVersions"
	}
	av, fetch := v.max[apiKeyApiVersions], v.max[1]
	switch {
	case av <= 0:
		return "Kafka 0.10"
	case av == 1 && fetch <= 5:
		return "Kafka 0.11"
	case av == 1 && fetch == 6:
		return "Kafka 1.0"
	case av == 1:
		return "Kafka 1.1"
	case av == 2:
		return "Kafka 2.0-2.3"
	case av == 3 && fetch <= 12:
		return "Kafka 2.4-3.0"
	default:
		return "Kafka 3.1 or later"
	}
}

// unsupported is the error for an API the broker lacks, naming its version.
func (v *apiVersions) unsupported(key int16) error {
	return fmt.Errorf("%w: the broker (%s) does not support %s", ErrUnsupportedVersion, v.describe(), APIName(key))
}

// fits reports a request whose fields mean something the version it goes
// at cannot say, instead of letting the broker reject it with a vaguer
// error: CreateTopics with -1 partitions or replicas (the broker's
// defaults, KIP-464) before v4, i.e. Kafka 2.4; the share requests' v2
// features (shareFits).
func (v *apiVersions) fits(req Request, version int16) error {
	if err := v.shareFits(req, version); err != nil {
		return err
	}
	r, ok := req.(*CreateTopicsRequest)
	if !ok || version >= 4 {
		return nil
	}
	for _, t := range r.Topics {
		if len(t.Assignments) == 0 && (t.NumPartitions < 0 || t.ReplicationFactor < 0) {
			return fmt.Errorf("%w: topic %q: the broker (%s) takes CreateTopics v%d, which has no broker default (-1) "+
				"for the number of partitions or the replication factor (v4, Kafka 2.4): give both",
				ErrUnsupportedVersion, t.Name, v.describe(), version)
		}
	}
	return nil
}

// anyLegacy reports whether a broker was taken for one without ApiVersions.
func (cl *Client) anyLegacy() bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, m := range cl.legacy {
		if m.era != eraModern {
			return true
		}
	}
	return false
}

// Record features the Produce version a broker takes may lack. A batch
// that needs one fails at once, with an error naming the broker's version,
// instead of being retried until its delivery timeout (a broker before
// Kafka 2.1 takes zstd for a corrupt message, a retriable error).
const (
	produceHeadersVersion = 3 // record headers: message format v2, Kafka 0.11
	produceZstdVersion    = 7 // zstd, Kafka 2.1 (KIP-110)
)

// errZstdUnfit is the error of a zstd batch for a broker whose Produce
// version v predates zstd.
func (v *apiVersions) errZstdUnfit(version int16) error {
	return fmt.Errorf("%w: zstd compression needs Kafka 2.1 (Produce v%d); the broker (%s) takes Produce v%d",
		ErrUnsupportedCompressionType, produceZstdVersion, v.describe(), version)
}

// errHeadersUnfit is the error of a record with headers for a broker whose
// Produce version predates them.
func (v *apiVersions) errHeadersUnfit(version int16) error {
	return fmt.Errorf("%w: record headers need Kafka 0.11 (Produce v%d); the broker (%s) takes Produce v%d",
		ErrUnsupportedVersion, produceHeadersVersion, v.describe(), version)
}

// dropUnfit fails what the Produce version cannot carry, before it is
// encoded: every batch if the producer compresses with zstd before v7,
// records with headers before v3 (the others of their batch still go). It
// returns the batches left to send; those dropped are no longer in flight.
func (p *Producer) dropUnfit(bs []*batch, version int16, vs *apiVersions) []*batch {
	zstd := p.cfg.compression == CompressionZstd && version < produceZstdVersion
	if !zstd && version >= produceHeadersVersion {
		return bs
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := bs[:0]
	for _, b := range bs {
		if zstd {
			b.ps.inflight--
			p.failBatch(b, vs.errZstdUnfit(version))
			continue
		}
		recs := b.recs[:0]
		for _, pr := range b.recs {
			if len(pr.rec.Headers) == 0 {
				recs = append(recs, pr)
				continue
			}
			b.bytes -= pr.size
			p.finish(pr, vs.errHeadersUnfit(version))
		}
		clear(b.recs[len(recs):])
		if b.recs = recs; len(recs) == 0 {
			b.ps.inflight--
			p.settle(b)
			continue
		}
		kept = append(kept, b)
	}
	return kept
}

// errFlightEmpty is sink.send's error when dropUnfit left nothing to send.
var errFlightEmpty = errors.New("kpax: nothing left to send")

// errIdempotenceUnsupported is the producer's error when WithIdempotence(true)
// meets a broker without idempotent producers (before Kafka 0.11).
func errIdempotenceUnsupported(err error) error {
	return fmt.Errorf("kpax: WithIdempotence(true): the broker has no idempotent producer (Kafka 0.11+): %w", err)
}

// legacySessionTimeout is the session timeout a group falls back to when
// the coordinator refuses the default (45s, KIP-735): the Java client's
// default before Kafka 3.0, within every broker's default range (Kafka 0.9
// and 0.10.0 allow 6s to 30s).
const legacySessionTimeout = 10 * time.Second

// sessionRefused handles INVALID_SESSION_TIMEOUT from JoinGroup: with the
// default session timeout it lowers it to legacySessionTimeout and returns
// nil (join again); otherwise it returns the error, saying what to change.
// Only the manager goroutine calls it (it writes g.cfg.session).
func (g *GroupConsumer) sessionRefused(err error) error {
	if g.cfg.sessionSet || g.cfg.session <= legacySessionTimeout || g.cfg.heartbeat >= legacySessionTimeout {
		return fmt.Errorf("%w: session timeout %v: set WithSessionTimeout within the coordinator's "+
			"group.min.session.timeout.ms and group.max.session.timeout.ms (by default 6s to 30s before Kafka 0.10.1)",
			err, g.cfg.session)
	}
	g.conf.logger.Info("kpax: the coordinator refused the default session timeout; using the pre-3.0 default",
		"group", g.group, "refused", g.cfg.session, "session", legacySessionTimeout)
	g.cfg.session = legacySessionTimeout
	return nil
}
