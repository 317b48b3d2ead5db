package kpax

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Admin administers a cluster through a Client: topics, configs, groups,
// offsets, ACLs, quotas, SCRAM users, leader elections, reassignments,
// producers and transactions. Get one with Client.Admin; it is safe for
// concurrent use and lives as long as its Client.
//
// Every method takes a context, sends each request to the broker it belongs
// to at the version negotiated with that broker, and fills the fields that
// version reads (e.g. DeleteTopics v6 names topics in Topics, older versions
// in TopicNames), so the caller never deals with versions. Methods that act
// on several items (topics, groups, partitions, ...) return one result per
// item, each with its own Err (errors.Is-able against the package's Kafka
// errors, e.g. ErrTopicAlreadyExists), and an error that summarises the
// failed items: an *AdminError that unwraps to every item's error. When
// the request itself fails (no broker, timeout) the error is that failure
// and the results are nil. Input that Kafka would reject (an empty or too
// long topic name, zero partitions, an unknown resource type) is an error
// wrapping ErrInvalidArgument before anything is sent. Items answered by
// a coordinator, leader or controller that has moved (NOT_COORDINATOR,
// NOT_LEADER_OR_FOLLOWER, NOT_CONTROLLER, ...) are asked again of the one
// fresh metadata names, until ctx ends: then their last answers stand.
type Admin struct {
	cl *Client
}

// Admin returns the cluster administration API of the client.
func (cl *Client) Admin() *Admin { return &Admin{cl: cl} }

// ErrInvalidArgument is wrapped by the error of an admin call whose input
// is invalid; nothing was sent.
var ErrInvalidArgument = classedValue(ClassAbortable, "kpax: invalid argument")

// AdminError summarises the items of an admin call that failed. Errors
// holds each failed item's error, which names the item; errors.Is and
// errors.As look through all of them.
type AdminError struct {
	Op     string  // the call, e.g. "CreateTopics"
	Total  int     // the number of items in the call
	Errors []error // one per failed item
}

// Error says how many items failed and lists them.
func (e *AdminError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kpax: %s: %d of %d failed", e.Op, len(e.Errors), e.Total)
	for i, err := range e.Errors {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(e.Errors)-i)
			break
		}
		b.WriteString("; ")
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap returns the items' errors.
func (e *AdminError) Unwrap() []error { return e.Errors }

// Is reports whether target is ErrAbortable where no item's error has a
// class of its own. Otherwise the items' errors answer: errors.Is matches
// the class of each (ClassOf gives the first's).
func (e *AdminError) Is(target error) bool { return defaultClassIs(e, target, e.Errors...) }

// ItemError is the error of one item of an admin call: a topic, a group, a
// partition, a resource. Err is usually an *Error (a Kafka error code);
// Message is what the broker said about it, if anything.
type ItemError struct {
	Item    string // e.g. `topic "orders"`, `orders/3`, `group "g1"`
	Err     error
	Message string
}

// Error names the item, the cause and the broker's message.
func (e *ItemError) Error() string {
	if e.Message == "" || strings.Contains(e.Err.Error(), e.Message) {
		return fmt.Sprintf("%s: %v", e.Item, e.Err)
	}
	return fmt.Sprintf("%s: %v (%s)", e.Item, e.Err, e.Message)
}

// Unwrap returns the cause.
func (e *ItemError) Unwrap() error { return e.Err }

// Is reports whether target is ErrAbortable where the cause has no class
// of its own; errors.Is finds a cause's class in the cause.
func (e *ItemError) Is(target error) bool { return defaultClassIs(e, target, e.Err) }

// itemErr returns nil for code 0, else an *ItemError for the item.
func itemErr(item string, code int16, msg *string) error {
	if err := ErrorForCode(code); err != nil {
		return &ItemError{Item: item, Err: err, Message: deref(msg)}
	}
	return nil
}

// summary collects item errors into one *AdminError, nil if none failed.
type summary struct {
	op    string
	total int
	errs  []error
}

func (s *summary) add(err error) {
	s.total++
	if err != nil {
		s.errs = append(s.errs, err)
	}
}

func (s *summary) err() error {
	if len(s.errs) == 0 {
		return nil
	}
	return &AdminError{Op: s.op, Total: s.total, Errors: s.errs}
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
}

// TopicPartitions names partitions by topic. A topic with no partitions
// listed means all its partitions, where the call says so.
type TopicPartitions map[string][]int32

// sortedKeys returns the topics in order.
func (tp TopicPartitions) sortedKeys() []string {
	names := make([]string, 0, len(tp))
	for t := range tp {
		names = append(names, t)
	}
	sort.Strings(names)
	return names
}

// TopicPartitionOffset is an offset of a partition.
type TopicPartitionOffset struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32  // -1 if unknown
	Metadata    string // for a group's commit: the committed metadata
}

func (a *Admin) request(ctx context.Context, req Request) (Response, int16, error) {
	return a.cl.request(ctx, req)
}

func (a *Admin) requestBroker(ctx context.Context, node int32, req Request) (Response, int16, error) {
	r, s, err := a.cl.requestBroker(ctx, node, req)
	return r, s.version, err
}

// checkTopic rejects a topic name Kafka would reject.
func checkTopic(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return invalidf("topic name %q: want 1 to 249 characters, not . or ..", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return invalidf("topic name %q: character %q is not one of [a-zA-Z0-9._-]", name, r)
		}
	}
	return nil
}

func checkTopics(names []string) error {
	if len(names) == 0 {
		return invalidf("no topics")
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if err := checkTopic(n); err != nil {
			return err
		}
		if seen[n] {
			return invalidf("topic %q given twice", n)
		}
		seen[n] = true
	}
	return nil
}

func checkGroups(groups []string) error {
	if len(groups) == 0 {
		return invalidf("no groups")
	}
	for _, g := range groups {
		if g == "" {
			return invalidf("empty group ID")
		}
	}
	return nil
}

func checkPartitions(tp TopicPartitions, needPartitions bool) error {
	if len(tp) == 0 {
		return invalidf("no topics")
	}
	for t, ps := range tp {
		if err := checkTopic(t); err != nil {
			return err
		}
		if needPartitions && len(ps) == 0 {
			return invalidf("topic %q: no partitions", t)
		}
		for _, p := range ps {
			if p < 0 {
				return invalidf("topic %q: partition %d", t, p)
			}
		}
	}
	return nil
}

// expand returns tp with every topic that lists no partitions given all
// its partitions from metadata; topics metadata does not know keep an
// empty list (their error comes from the broker or the caller).
func (a *Admin) expand(ctx context.Context, tp TopicPartitions) (TopicPartitions, map[string]error, error) {
	var all []string
	for t, ps := range tp {
		if len(ps) == 0 {
			all = append(all, t)
		}
	}
	out := make(TopicPartitions, len(tp))
	for t, ps := range tp {
		out[t] = slices.Clone(ps)
	}
	bad := map[string]error{}
	if len(all) == 0 {
		return out, bad, nil
	}
	md, err := a.cl.Metadata(ctx, all...)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range md.Topics {
		if t.Err != nil {
			bad[t.Name] = &ItemError{Item: fmt.Sprintf("topic %q", t.Name), Err: t.Err}
			continue
		}
		for _, p := range t.Partitions {
			out[t.Name] = append(out[t.Name], p.Partition)
		}
	}
	return out, bad, nil
}

// byLeader groups partitions by their leader's node ID; partitions without
// a leader get their error in bad.
func (a *Admin) byLeader(ctx context.Context, tp TopicPartitions) (map[int32]TopicPartitions, map[topicPartition]error) {
	out := map[int32]TopicPartitions{}
	bad := map[topicPartition]error{}
	for _, t := range tp.sortedKeys() {
		for _, p := range tp[t] {
			lp, err := a.cl.meta.leader(ctx, t, p)
			if err != nil {
				bad[topicPartition{t, p}] = err
				continue
			}
			if out[lp.Leader] == nil {
				out[lp.Leader] = TopicPartitions{}
			}
			out[lp.Leader][t] = append(out[lp.Leader][t], p)
		}
	}
	return out, bad
}

// leaderCall sends each leader of the partitions one request through send,
// which returns one result per partition it was given; item names a
// result's partition and its error. Partitions whose error is retriable
// (the leader moved, the leader does not have the partition yet or does
// not know its offsets yet, ...) are sent again, to their leader in fresh
// metadata, with backoff, until none is left or ctx ends: then their last
// results stand. Partitions without a leader in metadata get none's
// result. A request that fails (but for ctx ending in a retry) fails the
// call.
func leaderCall[T any](ctx context.Context, a *Admin, tp TopicPartitions, item func(T) (topicPartition, error),
	none func(k topicPartition, err error) T, send func(node int32, parts TopicPartitions) ([]T, error)) ([]T, error) {
	results := map[topicPartition]T{}
	for attempt := 0; ; attempt++ {
		leaders, bad := a.byLeader(ctx, tp)
		if attempt > 0 && ctx.Err() != nil { // ended while looking up leaders
			return slices.Collect(maps.Values(results)), nil
		}
		for k, err := range bad {
			results[k] = none(k, err)
		}
		retry := TopicPartitions{}
		for node, parts := range leaders {
			got, err := send(node, parts)
			if err != nil && attempt > 0 && ctx.Err() != nil {
				return slices.Collect(maps.Values(results)), nil
			}
			if err != nil {
				return nil, err
			}
			for _, r := range got {
				k, err := item(r)
				results[k] = r
				if IsRetriable(err) {
					retry[k.topic] = append(retry[k.topic], k.partition)
				}
			}
		}
		if len(retry) == 0 || !sleep(ctx, min(a.cl.cfg.retryBackoff<<min(attempt, 16), a.cl.cfg.retryBackoffMax)) {
			return slices.Collect(maps.Values(results)), nil
		}
		a.cl.meta.invalidate()
		tp = retry
	}
}

// controllerRequest sends a request the controller answers, and again,
// from fresh metadata, while every item's code (codes lists them) is
// NOT_CONTROLLER: the controller moved (a ZooKeeper-era cluster; KRaft
// brokers forward to the controller themselves). When ctx ends in a
// retry, the last response stands.
func (a *Admin) controllerRequest(ctx context.Context, req Request, codes func(Response) []int16) (Response, error) {
	var last Response
	for attempt := 0; ; attempt++ {
		r, _, err := a.request(ctx, req)
		if err != nil && last != nil && ctx.Err() != nil {
			return last, nil
		}
		if err != nil {
			return nil, err
		}
		cs := codes(r)
		if len(cs) == 0 || slices.ContainsFunc(cs, func(c int16) bool { return c != ErrNotController.code }) {
			return r, nil
		}
		last = r
		if !sleep(ctx, min(a.cl.cfg.retryBackoff<<min(attempt, 16), a.cl.cfg.retryBackoffMax)) {
			return r, nil
		}
		a.cl.meta.refresh(ctx) // the controller it names; a failure shows in the next request
	}
}

// brokerIDs returns the node IDs of every broker, from fresh metadata.
func (a *Admin) brokerIDs(ctx context.Context) ([]int32, error) {
	md, err := a.cl.Metadata(ctx, []string{}...)
	if err != nil {
		return nil, err
	}
	ids := make([]int32, len(md.Brokers))
	for i, b := range md.Brokers {
		ids[i] = b.NodeID
	}
	slices.Sort(ids)
	return ids, nil
}

func partitionItem(topic string, partition int32) string {
	return fmt.Sprintf("%s/%d", topic, partition)
}

// versionAt returns the version req would be sent at to the broker node
// (-1: wherever Request routes it), so that a call can reject what that
// version cannot carry before sending it.
func (a *Admin) versionAt(ctx context.Context, node int32, req Request) (int16, error) {
	if node < 0 {
		var err error
		if node, err = a.cl.route(ctx, req); err != nil {
			return -1, err
		}
	}
	p, err := a.cl.pool(node)
	if err != nil {
		return -1, err
	}
	c, err := p.get(ctx, apiLane(req.APIKey()))
	if err != nil {
		return -1, err
	}
	return c.versions.pick(req, a.cl.cfg.maxVersions)
}

// check is the first step of every exported method: a nil Admin (or one of
// a nil Client) and a nil context are errors, not panics.
func (a *Admin) check(ctx context.Context) error {
	if a == nil || a.cl == nil {
		return invalidf("nil Admin: get one with Client.Admin")
	}
	if ctx == nil {
		return errNilContext
	}
	return nil
}
