package kpax

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Consume-transform-produce (KIP-447): a group consumer's positions go into
// the producer's transaction (AddOffsetsToTxn, then TxnOffsetCommit with the
// group's generation, member ID and instance ID; under transaction version
// 2 TxnOffsetCommit v5 alone), so that one commit
// publishes the output records and the input offsets together, and a
// member that lost its partitions in a rebalance cannot commit them.

// groupTxnMeta is what TxnOffsetCommit needs of a group member.
type groupTxnMeta struct {
	group      string
	generation int32
	member     string
	instance   *string
}

// txnMeta returns the member's current generation, member ID and instance
// ID, and the positions of the partitions it owns.
func (g *GroupConsumer) txnMeta() (groupTxnMeta, map[topicPartition]position) {
	pos := g.c.positions()
	g.mu.Lock()
	defer g.mu.Unlock()
	m := groupTxnMeta{group: g.group, generation: g.generation, member: g.memberID}
	if g.cfg.instanceID != "" {
		m.instance = &g.cfg.instanceID
	}
	for tp := range pos {
		if !g.owned[tp] {
			delete(pos, tp)
		}
	}
	return m, pos
}

// SendOffsetsToTransaction adds the group consumer's positions (after every
// record its Poll returned, for the partitions it owns) to the open
// transaction: they are committed for the group if and only if the
// transaction commits. The group consumer should not commit itself (use
// WithAutoCommit(0)) and should read with WithIsolationLevel(ReadCommitted).
// An error means the transaction cannot commit: abort it. See
// GroupTransactSession for the whole loop, rebalances included.
func (p *Producer) SendOffsetsToTransaction(ctx context.Context, g *GroupConsumer) (err error) {
	defer func() { err = classify(err) }()
	if g == nil {
		return withClass(ClassAbortable, errors.New("kpax: SendOffsetsToTransaction: nil group consumer"))
	}
	meta, pos := g.txnMeta()
	return p.sendOffsets(ctx, meta, pos)
}

// sendOffsets adds offsets of a group to the open transaction.
func (p *Producer) sendOffsets(ctx context.Context, meta groupTxnMeta, offs map[topicPartition]position) error {
	tm, err := p.txnCall()
	if err != nil {
		return err
	}
	defer p.txnDone()
	p.mu.Lock()
	err = tm.admit()
	added, pid, v2 := tm.groups[meta.group], p.pid, tm.v2
	if err == nil && len(offs) > 0 && v2 {
		// TV2: the group coordinator adds the offsets to the
		// transaction (TxnOffsetCommit v5); the transaction has started
		// even if the answer is lost.
		tm.groups[meta.group] = true
	}
	p.mu.Unlock()
	if err != nil || len(offs) == 0 {
		return err
	}
	if v2 {
		ctx = withTxnV2(ctx)
	} else if !added {
		err := tm.retry(ctx, func(ctx context.Context) error {
			r, err := p.cl.Request(ctx, &AddOffsetsToTxnRequest{TransactionalID: tm.id, ProducerID: pid.id, ProducerEpoch: pid.epoch, GroupID: meta.group})
			if err != nil {
				return err
			}
			return ErrorForCode(r.(*AddOffsetsToTxnResponse).ErrorCode)
		})
		if err != nil {
			return tm.offsetsFailed(fmt.Errorf("kpax: AddOffsetsToTxn: %w", err), true)
		}
		p.mu.Lock()
		tm.groups[meta.group] = true
		p.mu.Unlock()
	}
	req := &TxnOffsetCommitRequest{TransactionalID: tm.id, GroupID: meta.group, ProducerID: pid.id, ProducerEpoch: pid.epoch,
		GenerationIDOrMemberEpoch: meta.generation, MemberID: meta.member, GroupInstanceID: meta.instance}
	for _, tp := range slices.SortedFunc(maps.Keys(offs), compareTP) {
		part := TxnOffsetCommitRequestTopicPartition{PartitionIndex: tp.partition, CommittedOffset: offs[tp].offset, CommittedLeaderEpoch: offs[tp].epoch}
		if n := len(req.Topics); n > 0 && req.Topics[n-1].Name == tp.topic {
			req.Topics[n-1].Partitions = append(req.Topics[n-1].Partitions, part)
		} else {
			req.Topics = append(req.Topics, TxnOffsetCommitRequestTopic{Name: tp.topic, Partitions: []TxnOffsetCommitRequestTopicPartition{part}})
		}
	}
	err = tm.retry(ctx, func(ctx context.Context) error {
		r, err := p.cl.Request(ctx, req)
		if err != nil {
			return err
		}
		return txnOffsetCommitErr(r.(*TxnOffsetCommitResponse))
	})
	if err != nil {
		// Under TV2 an epoch error is the transaction coordinator's
		// verdict too (the group coordinator asks it).
		return tm.offsetsFailed(fmt.Errorf("kpax: TxnOffsetCommit for group %q: %w", meta.group, err), v2)
	}
	return nil
}

// txnOffsetCommitErr returns the errors of a TxnOffsetCommit response;
// the group's errors (the member is no longer in the generation) are
// abortable, not retried.
func txnOffsetCommitErr(resp *TxnOffsetCommitResponse) error {
	var errs []error
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := ErrorForCode(p.ErrorCode); err != nil {
				errs = append(errs, &PartitionError{Topic: t.Name, Partition: p.PartitionIndex, Err: err})
			}
		}
	}
	err := errors.Join(errs...)
	if errors.Is(err, ErrRebalanceInProgress) || errors.Is(err, ErrIllegalGeneration) ||
		errors.Is(err, ErrUnknownMemberId) || errors.Is(err, ErrFencedInstanceId) {
		return withClass(ClassAbortable, err)
	}
	return err
}

// offsetsFailed takes the failure to add offsets: the transaction cannot
// commit; fencing is fatal.
func (tm *txnManager) offsetsFailed(err error, coordinator bool) error {
	p := tm.p
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case coordinator && (errors.Is(err, ErrProducerFenced) || errors.Is(err, ErrInvalidProducerEpoch)):
		tm.epochErr = true
	case ClassOf(err) == ClassFatal && !errors.Is(err, ErrFencedInstanceId):
		return tm.setFatal(err)
	}
	if ClassOf(err) == ClassRetriable {
		return err // ctx ended: the transaction is still fine
	}
	if tm.failed == nil {
		tm.failed = err
	}
	return withClass(ClassAbortable, err)
}

// GroupTransactSession is the exactly-once consume-transform-produce loop:
// a GroupConsumer reading committed records and a transactional Producer,
// where each transaction commits the records produced and the positions of
// the records consumed, together (KIP-447):
//
//	for {
//		fetch, err := s.Poll(ctx)
//		...
//		if err := s.Begin(ctx); err != nil { ... }
//		for _, r := range fetch.Records {
//			s.Producer().Produce(ctx, transform(r), nil)
//		}
//		committed, err := s.End(ctx, true)
//		...
//	}
//
// When a rebalance takes a partition away during a transaction (or the
// member loses its partitions), End aborts the transaction instead of
// committing, and every partition the member still owns is rewound to its
// committed offset: the aborted records are consumed again, by this member
// or by the partition's new owner. The group consumer never commits on its
// own (automatic commits are off, and a revocation commits only the
// committed positions again).
type GroupTransactSession struct {
	g *GroupConsumer
	p *Producer

	mu     sync.Mutex // held by Poll, Begin, End, Close and the rebalance callbacks
	open   bool       // a transaction is open
	lost   bool       // a partition was revoked or lost during it
	base   map[topicPartition]position
	polled map[topicPartition]bool // partitions Poll returned records of since the last End
	user   groupConfig             // the caller's rebalance callbacks
}

// NewGroupTransactSession joins the group with a group consumer whose
// offsets go through p's transactions. p must have WithTransactionalID; it
// stays the caller's (close it after the session). opts are the group
// consumer's options; the session sets read_committed isolation, turns
// automatic commits off, and wraps WithOnAssigned, WithOnRevoked and
// WithOnLost (which are still called).
func (cl *Client) NewGroupTransactSession(p *Producer, group string, topics []string, opts ...Option) (*GroupTransactSession, error) {
	if p == nil || p.txn == nil {
		return nil, withClass(ClassAbortable, fmt.Errorf("kpax: NewGroupTransactSession: %w", ErrNotTransactional))
	}
	cfg, err := applyOptions(cl.cfg, opts)
	if err != nil {
		return nil, err
	}
	s := &GroupTransactSession{p: p, base: map[topicPartition]position{}, polled: map[topicPartition]bool{}, user: cfg.group}
	own := append(slices.Clip(opts), WithIsolationLevel(ReadCommitted), WithAutoCommit(0),
		WithOnAssigned(s.assigned), WithOnRevoked(s.revoked), WithOnLost(s.lostParts))
	s.mu.Lock() // the callbacks wait for s.g
	defer s.mu.Unlock()
	g, err := cl.NewGroupConsumer(group, topics, own...)
	if err != nil {
		return nil, err
	}
	s.g = g
	return s, nil
}

// Producer returns the session's producer, for the records of a transaction.
func (s *GroupTransactSession) Producer() *Producer { return s.p }

// GroupConsumer returns the session's group consumer.
func (s *GroupTransactSession) GroupConsumer() *GroupConsumer { return s.g }

// Poll returns the next records, as GroupConsumer.Poll.
func (s *GroupTransactSession) Poll(ctx context.Context) (Fetch, error) {
	f, err := s.g.Poll(ctx)
	s.mu.Lock()
	for i := range f.Records {
		s.polled[topicPartition{f.Records[i].Topic, f.Records[i].Partition}] = true
	}
	s.mu.Unlock()
	return f, err
}

// Begin opens a transaction (Producer.BeginTransaction).
func (s *GroupTransactSession) Begin(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.p.BeginTransaction(ctx); err != nil {
		return err
	}
	s.open, s.lost = true, false
	return nil
}

// End ends the open transaction. With commit, it sends the group's
// positions into the transaction and commits it; it reports whether it
// committed. It aborts instead, rewinding the partitions the member owns to
// their committed offsets, when commit is false, a partition was revoked or
// lost since Begin, or the commit failed with an error of ClassAbortable
// (returned with committed false: go on with the next Poll). An error of
// ClassFatal means the producer was fenced or the group member is gone:
// close the session. If ctx ends during the commit, End returns its error
// and the transaction stays open: call End again.
func (s *GroupTransactSession) End(ctx context.Context, commit bool) (committed bool, err error) {
	defer func() { err = classify(err) }()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.open {
		return false, withClass(ClassAbortable, ErrNoTransaction)
	}
	defer clear(s.polled)
	var meta groupTxnMeta
	var pos map[topicPartition]position
	if commit && !s.lost {
		meta, pos = s.g.txnMeta()
		// The member may have lost partitions without the callback having
		// run yet (it waits for s.mu): every partition consumed must still
		// be owned, in a generation (-1 would skip the coordinator's
		// generation check, KIP-447).
		s.lost = meta.generation < 0
		for tp := range s.polled {
			if _, ok := pos[tp]; !ok {
				s.lost = true
			}
		}
	}
	if commit && !s.lost {
		for tp, b := range s.base {
			if pos[tp] == b {
				delete(pos, tp) // committed already
			}
		}
		err = s.p.sendOffsets(ctx, meta, pos)
		if err == nil {
			err = s.p.CommitTransaction(ctx)
		}
		switch {
		case err == nil:
			maps.Copy(s.base, pos)
			s.open = false
			return true, nil
		case ClassOf(err) == ClassFatal:
			s.open = false
			return false, err
		case ClassOf(err) == ClassRetriable && ctx.Err() != nil:
			return false, err
		}
		s.g.conf.logger.Info("kpax: transaction aborted", "group", meta.group, "err", err)
	}
	if aerr := s.p.AbortTransaction(ctx); aerr != nil && !errors.Is(aerr, ErrNoTransaction) {
		return false, aerr
	}
	s.open = false
	if rerr := s.rewind(ctx, nil); rerr != nil {
		return false, rerr
	}
	if ClassOf(err) == ClassAbortable {
		err = nil // aborted, as documented
	}
	return false, err
}

// rewind moves the given partitions (nil: every owned one not being
// revoked) back to their committed offsets, dropping what was fetched
// beyond. s.mu is held. A partition being revoked is left to the OnRevoked
// wrapper (revoked, which rewinds it before the group unassigns it):
// assigning it again here, after the group's unassign, would keep fetching
// a partition the member no longer owns (CI saw a member abort one
// transaction after another on such a partition).
func (s *GroupTransactSession) rewind(ctx context.Context, tps []topicPartition) error {
	g := s.g
	if tps == nil {
		g.mu.Lock()
		tps = slices.DeleteFunc(g.ownedList(), func(tp topicPartition) bool { return g.revoking[tp] })
		g.mu.Unlock()
	}
	offs := map[topicPartition]Offset{}
	var missing []topicPartition
	for _, tp := range tps {
		if b, ok := s.base[tp]; ok {
			offs[tp] = Offset{kind: offsetExact, at: b.offset, epoch: b.epoch}
		} else {
			missing = append(missing, tp)
		}
	}
	if len(missing) > 0 {
		fetched, err := g.fetchOffsets(ctx, missing)
		if err != nil {
			return fmt.Errorf("kpax: rewinding to the committed offsets: %w", err)
		}
		maps.Copy(offs, fetched)
	}
	g.c.assign(offs)
	// A partition lost meanwhile (lose unassigns before OnLost) must not
	// be fetched again.
	g.mu.Lock()
	var gone []topicPartition
	for tp := range offs {
		if !g.owned[tp] {
			gone = append(gone, tp)
		}
	}
	g.mu.Unlock()
	g.c.unassign(gone)
	return nil
}

func (s *GroupTransactSession) assigned(ctx context.Context, parts map[string][]int32) {
	s.mu.Lock()
	for t, ps := range parts {
		for _, p := range ps {
			delete(s.base, topicPartition{t, p}) // another member may have committed since
		}
	}
	s.mu.Unlock()
	if f := s.user.onAssigned; f != nil {
		f(ctx, parts)
	}
}

// revoked runs before the group stops fetching revoked partitions and
// commits their positions: during a transaction it dooms the transaction
// and rewinds them, so that the group commits only their committed offsets
// again.
func (s *GroupTransactSession) revoked(ctx context.Context, parts map[string][]int32) {
	s.mu.Lock()
	if s.open {
		s.lost = true
	}
	var tps []topicPartition
	for t, ps := range parts {
		for _, p := range ps {
			tps = append(tps, topicPartition{t, p})
		}
	}
	if err := s.rewind(ctx, tps); err != nil {
		s.g.conf.logger.Warn("kpax: transact session: rewinding revoked partitions", "err", err)
	}
	for _, tp := range tps {
		delete(s.base, tp)
	}
	s.mu.Unlock()
	if f := s.user.onRevoked; f != nil {
		f(ctx, parts)
	}
}

func (s *GroupTransactSession) lostParts(ctx context.Context, parts map[string][]int32) {
	s.mu.Lock()
	if s.open {
		s.lost = true
	}
	for t, ps := range parts {
		for _, p := range ps {
			delete(s.base, topicPartition{t, p})
		}
	}
	s.mu.Unlock()
	if f := s.user.onLost; f != nil {
		f(ctx, parts)
	}
}

// Close aborts an open transaction, rewinds, and closes the group consumer
// (which leaves the group). The producer stays open.
func (s *GroupTransactSession) Close(ctx context.Context) error {
	s.mu.Lock()
	var err error
	if s.open {
		err = s.p.AbortTransaction(ctx)
		s.open = false
		if rerr := s.rewind(ctx, nil); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	s.mu.Unlock()
	return errors.Join(err, s.g.Close(ctx))
}
