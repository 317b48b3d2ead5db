package kpax

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
)

// ClusterDescription is what the cluster says of itself.
type ClusterDescription struct {
	ClusterID  string
	Controller int32    // node ID; -1 if unknown
	Brokers    []Broker // sorted by node ID
}

// DescribeCluster returns the cluster ID, the controller and the brokers,
// with DescribeCluster (Kafka 2.8+) or, from older brokers, Metadata.
func (a *Admin) DescribeCluster(ctx context.Context) (*ClusterDescription, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	r, _, err := a.request(ctx, &DescribeClusterRequest{EndpointType: 1})
	if errors.Is(err, ErrUnsupportedVersion) {
		md, err := a.cl.Metadata(ctx, []string{}...)
		if err != nil {
			return nil, err
		}
		slices.SortFunc(md.Brokers, func(a, b Broker) int { return cmp.Compare(a.NodeID, b.NodeID) })
		return &ClusterDescription{ClusterID: md.ClusterID, Controller: md.Controller, Brokers: md.Brokers}, nil
	}
	if err != nil {
		return nil, err
	}
	resp := r.(*DescribeClusterResponse)
	if err := itemErr("DescribeCluster", resp.ErrorCode, resp.ErrorMessage); err != nil {
		return nil, err
	}
	cd := &ClusterDescription{ClusterID: resp.ClusterID, Controller: resp.ControllerID}
	for _, b := range resp.Brokers {
		cd.Brokers = append(cd.Brokers, Broker{NodeID: b.BrokerID, Host: b.Host, Port: b.Port, Rack: deref(b.Rack)})
	}
	slices.SortFunc(cd.Brokers, func(a, b Broker) int { return cmp.Compare(a.NodeID, b.NodeID) })
	return cd, nil
}

// Feature is a feature flag (KIP-584), e.g. "metadata.version" or
// "kraft.version", with a range of versions.
type Feature struct {
	Name string
	Min  int16
	Max  int16
}

// Features is what a broker says of the cluster's feature flags.
type Features struct {
	Supported []Feature // what the broker can run
	Finalized []Feature // what the cluster runs (Min and Max are levels)
	Epoch     int64     // of the finalized features; -1 if none
}

// DescribeFeatures returns the feature flags one broker reports in
// ApiVersions (Kafka 2.7+; empty before).
func (a *Admin) DescribeFeatures(ctx context.Context) (*Features, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	r, _, err := a.request(ctx, &ApiVersionsRequest{ClientSoftwareName: a.cl.cfg.softwareName, ClientSoftwareVersion: a.cl.cfg.softwareVer, NodeID: -1})
	if err != nil {
		return nil, err
	}
	resp := r.(*ApiVersionsResponse)
	if err := itemErr("ApiVersions", resp.ErrorCode, nil); err != nil {
		return nil, err
	}
	f := &Features{Epoch: -1}
	if resp.FinalizedFeaturesEpoch != nil {
		f.Epoch = *resp.FinalizedFeaturesEpoch
	}
	for _, s := range resp.SupportedFeatures {
		f.Supported = append(f.Supported, Feature{Name: s.Name, Min: s.MinVersion, Max: s.MaxVersion})
	}
	for _, s := range resp.FinalizedFeatures {
		f.Finalized = append(f.Finalized, Feature{Name: s.Name, Min: s.MinVersionLevel, Max: s.MaxVersionLevel})
	}
	byName := func(a, b Feature) int { return cmp.Compare(a.Name, b.Name) }
	slices.SortFunc(f.Supported, byName)
	slices.SortFunc(f.Finalized, byName)
	return f, nil
}

// LogDir is one log directory of a broker.
type LogDir struct {
	Broker      int32
	Dir         string
	TotalBytes  int64 // -1 before Kafka 3.3 (DescribeLogDirs v4)
	UsableBytes int64 // -1 before Kafka 3.3
	Partitions  []LogDirPartition
	Err         error // e.g. ErrKafkaStorageError for an offline dir
}

// LogDirPartition is a partition's replica in a log directory.
type LogDirPartition struct {
	Topic     string
	Partition int32
	Size      int64 // bytes
	OffsetLag int64 // how far the replica is behind the log end (a future replica: behind the current one)
	Future    bool  // being moved here (kafka-reassign-partitions across dirs)
}

// DescribeLogDirs returns the log directories of the brokers (all when none
// is given) with the replicas of the partitions tp names in them (nil tp:
// every partition). A broker that fails adds its error to the summary.
func (a *Admin) DescribeLogDirs(ctx context.Context, tp TopicPartitions, brokers ...int32) ([]LogDir, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if tp != nil {
		if err := checkPartitions(tp, false); err != nil {
			return nil, err
		}
		var err error
		if tp, _, err = a.expand(ctx, tp); err != nil {
			return nil, err
		}
	}
	if len(brokers) == 0 {
		var err error
		if brokers, err = a.brokerIDs(ctx); err != nil {
			return nil, err
		}
	}
	req := &DescribeLogDirsRequest{}
	if tp != nil {
		req.Topics = []DescribeLogDirsRequestTopic{}
		for _, t := range tp.sortedKeys() {
			req.Topics = append(req.Topics, DescribeLogDirsRequestTopic{Topic: t, Partitions: tp[t]})
		}
	}
	var out []LogDir
	s := summary{op: "DescribeLogDirs"}
	for _, id := range brokers {
		item := fmt.Sprintf("broker %d", id)
		r, _, err := a.requestBroker(ctx, id, req)
		if err != nil {
			s.add(&ItemError{Item: item, Err: err})
			continue
		}
		resp := r.(*DescribeLogDirsResponse)
		if err := itemErr(item, resp.ErrorCode, nil); err != nil {
			s.add(err)
			continue
		}
		s.add(nil)
		for _, d := range resp.Results {
			ld := LogDir{Broker: id, Dir: d.LogDir, TotalBytes: d.TotalBytes, UsableBytes: d.UsableBytes,
				Err: itemErr(fmt.Sprintf("broker %d dir %s", id, d.LogDir), d.ErrorCode, nil)}
			for _, t := range d.Topics {
				for _, p := range t.Partitions {
					ld.Partitions = append(ld.Partitions, LogDirPartition{Topic: t.Name, Partition: p.PartitionIndex, Size: p.PartitionSize, OffsetLag: p.OffsetLag, Future: p.IsFutureKey})
				}
			}
			slices.SortFunc(ld.Partitions, func(a, b LogDirPartition) int {
				return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
			})
			out = append(out, ld)
			if ld.Err != nil {
				s.errs = append(s.errs, ld.Err)
			}
		}
	}
	return out, s.err()
}

// BrokerAPIVersions is what one broker supports of the protocol, as the
// client negotiated it when it connected.
type BrokerAPIVersions struct {
	Broker int32
	// Release is the broker's Kafka release as far as its versions tell,
	// e.g. "Kafka 2.4-3.0" or "Kafka 3.1 or later".
	Release string
	APIs    []APIVersionRange // every API the broker supports, sorted by key
	Err     error             // the broker could not be reached
}

// APIVersionRange is the versions of one API: the broker's, this
// package's and the one the client sends that broker.
type APIVersionRange struct {
	Key      int16
	Name     string // "" for an API this package does not know
	Min, Max int16  // the broker's range
	// KpaxMin and KpaxMax are this package's range, -1 for an API it does
	// not know.
	KpaxMin, KpaxMax int16
	// Use is the version the client sends the broker, within both ranges
	// and the caps of WithMaxVersion; -1 when none fits.
	Use int16
}

// APIVersions returns the API versions of the brokers (every broker when
// none is given), sorted by broker ID: those the broker answered to the
// ApiVersions request each connection starts with, or, for a broker older
// than Kafka 0.10 (which has no ApiVersions), those of its release. A
// broker that cannot be reached has its error in its result and in the
// summary.
func (a *Admin) APIVersions(ctx context.Context, brokers ...int32) ([]BrokerAPIVersions, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if len(brokers) == 0 {
		var err error
		if brokers, err = a.brokerIDs(ctx); err != nil {
			return nil, err
		}
	}
	out := make([]BrokerAPIVersions, 0, len(brokers))
	s := summary{op: "APIVersions"}
	for _, id := range slices.Sorted(slices.Values(brokers)) {
		bv := BrokerAPIVersions{Broker: id}
		vs, err := a.versionsOf(ctx, id)
		if err != nil {
			bv.Err = &ItemError{Item: fmt.Sprintf("broker %d", id), Err: err}
		} else {
			bv.Release, bv.APIs = vs.describe(), a.apiRanges(vs)
		}
		out = append(out, bv)
		s.add(bv.Err)
	}
	return out, s.err()
}

// versionsOf returns the versions negotiated with the broker, connecting
// to it if no connection is open.
func (a *Admin) versionsOf(ctx context.Context, node int32) (*apiVersions, error) {
	p, err := a.cl.pool(node)
	if err != nil {
		if rerr := a.cl.meta.refresh(ctx); rerr != nil {
			return nil, err
		}
		if p, err = a.cl.pool(node); err != nil {
			return nil, err
		}
	}
	c, err := p.get(ctx, apiLane(apiKeyApiVersions))
	if err != nil {
		return nil, err
	}
	return &c.versions, nil
}

func (a *Admin) apiRanges(vs *apiVersions) []APIVersionRange {
	var out []APIVersionRange
	for key := range int16(len(vs.max)) {
		if vs.max[key] < 0 {
			continue
		}
		r := APIVersionRange{Key: key, Name: APIName(key), Min: vs.min[key], Max: vs.max[key], KpaxMin: -1, KpaxMax: -1, Use: -1}
		if req := NewRequest(key); req != nil {
			r.KpaxMin, r.KpaxMax = req.MinVersion(), req.MaxVersion()
			if v, err := vs.pick(req, a.cl.cfg.maxVersions); err == nil {
				r.Use = v
			}
		}
		out = append(out, r)
	}
	return out
}
