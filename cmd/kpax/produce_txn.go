package main

import (
	"context"
	"errors"
	"fmt"

	"h12.me/kpax"
)

// produceTxn runs kpax produce -txn: the lines go in transactions of the
// transactional ID, one per run or one per -txn-lines lines.
type produceTxn struct {
	prod  *kpax.Producer
	every int // lines per transaction; 0: one for the run
	lines int // in the open transaction
}

// newProduceTxn returns nil without a transactional ID.
func newProduceTxn(id string, every int) (*produceTxn, []kpax.Option, error) {
	if id == "" {
		if every != 0 {
			return nil, nil, usagef("-txn-lines needs -txn")
		}
		return nil, nil, nil
	}
	if every < 0 {
		return nil, nil, usagef("-txn-lines %d: must not be negative", every)
	}
	return &produceTxn{every: every}, []kpax.Option{kpax.WithTransactionalID(id)}, nil
}

// begin opens the first transaction.
func (t *produceTxn) begin(ctx context.Context, prod *kpax.Producer) error {
	if t == nil {
		return nil
	}
	t.prod = prod
	return prod.BeginTransaction(ctx)
}

// produced counts a line; a full transaction is committed and the next one
// begun.
func (t *produceTxn) produced(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.lines++
	if t.every == 0 || t.lines < t.every {
		return nil
	}
	t.lines = 0
	if err := t.prod.CommitTransaction(ctx); err != nil {
		return fmt.Errorf("committing the transaction: %w", err)
	}
	return t.prod.BeginTransaction(ctx)
}

// end commits the open transaction, or aborts it after a failure.
func (t *produceTxn) end(ctx context.Context, failure error) error {
	if t == nil || t.prod == nil {
		return nil
	}
	if failure != nil {
		if err := t.prod.AbortTransaction(ctx); err != nil && !errors.Is(err, kpax.ErrNoTransaction) {
			return fmt.Errorf("aborting the transaction: %w", err)
		}
		return nil
	}
	if err := t.prod.CommitTransaction(ctx); err != nil && !errors.Is(err, kpax.ErrNoTransaction) {
		return fmt.Errorf("committing the transaction: %w", err)
	}
	return nil
}
