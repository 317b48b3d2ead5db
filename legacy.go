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
// v0 of the APIs its era had (0.8: produce, fetch, offsets, metadata,
// offset commit/fetch, coordinator lookup; 0.9 added the group APIs).
func legacyVersions(era legacyEra) apiVersions {
	v := newAPIVersions()
	v.legacy = true
	v.era = era
	for key := int16(0); key <= 16; key++ {
		if era == era08 && key > apiKeyFindCoordinator {
			break
		}
		if key >= 4 && key <= 7 { // broker-to-broker APIs
			continue
		}
		v.min[key], v.max[key] = 0, 0
	}
	return v
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
// defaults, KIP-464) before v4, i.e. Kafka 2.4.
func (v *apiVersions) fits(req Request, version int16) error {
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
