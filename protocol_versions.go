package kpax

import (
	"context"
	"fmt"
	"math"
)

// pathMaxVersion caps the version a request is sent at below what the
// generated code can encode (its MaxVersion) where a newer version means
// more than new fields: a different protocol that the client's own paths
// do not speak yet, or fields this request leaves unset. Each cap says why.
// The broker's and the user's caps (WithMaxVersion) apply as well; the
// lowest wins.
func pathMaxVersion(req Request) int16 {
	switch r := req.(type) {
	case *ProduceRequest:
		if r.TransactionalID != nil {
			// v12+ is transactions V2 (KIP-890): the broker adds the
			// partition to the transaction itself. The producer sends
			// it in a TV2 transaction (txn.go); other requests stay V1.
			return 11
		}
		if !produceHasIDs(r) {
			return 12 // v13 names topics by ID only (KIP-516)
		}
	case *OffsetCommitRequest:
		if !commitHasIDs(r) {
			return 9 // v10 names topics by ID only (KIP-848)
		}
	case *OffsetFetchRequest:
		if !fetchOffsetsHasIDs(r) {
			return 9 // v10 names topics by ID only (KIP-848)
		}
	case *TxnOffsetCommitRequest:
		// v5+ is transactions V2 (KIP-890), sent only in a TV2
		// transaction (txnV2Key, txnV2Version: v6, with topic IDs,
		// where every topic's ID is known).
		return 4
	case *ApiVersionsRequest:
		// v5 (KIP-1242) carries the cluster and node the client means to
		// reach: both or neither (ClusterID nil and NodeID -1), or a 4.4
		// broker rejects it (INVALID_REQUEST). A zero request sets
		// neither properly, so it goes at v4.
		if (r.ClusterID == nil) != (r.NodeID == -1) {
			return 4
		}
	case *AddPartitionsToTxnRequest:
		// v4+ is the brokers' form (KIP-890 verification), batched by
		// transactional ID; a client sends v3.
		return 3
	case *EndTxnRequest:
		// v5 is transactions V2 (KIP-890): the broker bumps the producer
		// epoch at every commit and returns it, which the client must
		// adopt: sent only in a TV2 transaction (txnV2Key).
		return 4
	}
	return math.MaxInt16
}

// txnV2Key marks the context of a request that belongs to a transaction of
// version 2 (KIP-890, txn.go): sendFrame sends EndTxn and TxnOffsetCommit at
// their TV2 version, above pathMaxVersion's cap.
type txnV2Key struct{}

// withTxnV2 marks ctx as a TV2 transaction's (txnV2Key).
func withTxnV2(ctx context.Context) context.Context { return context.WithValue(ctx, txnV2Key{}, true) }

// txnV2Version is the version a transaction of version 2 sends req at; -1
// for a request that is the same in both versions.
func txnV2Version(req Request) int16 {
	switch r := req.(type) {
	case *ProduceRequest:
		return 13 // 12 where a topic's ID is unknown (the sender caps it)
	case *EndTxnRequest:
		return 5
	case *TxnOffsetCommitRequest:
		if txnCommitHasIDs(r) {
			return 6 // names topics by ID (KIP-516)
		}
		return 5
	}
	return -1
}

// txnV2MinVersion is the oldest version of req that speaks transactions
// version 2: a broker must allow it for a transaction to be of version 2.
func txnV2MinVersion(req Request) int16 {
	if _, ok := req.(*ProduceRequest); ok {
		return 12
	}
	return 5 // EndTxn, TxnOffsetCommit
}

// txnV2Fallback is the TV2 version of req a broker that lacks want may take
// instead (the same protocol without topic IDs), or -1.
func txnV2Fallback(req Request, want int16) int16 {
	switch req.(type) {
	case *ProduceRequest, *TxnOffsetCommitRequest:
		if want > 12 || want == 6 {
			return want - 1
		}
	}
	return -1
}

// allows reports whether the broker and the caps let a request with the key
// go at version v.
func (v *apiVersions) allows(key, ver int16, caps map[int16]int16) bool {
	if key < 0 || int(key) >= len(v.max) || ver < v.min[key] || ver > v.max[key] {
		return false
	}
	c, ok := caps[key]
	return !ok || ver <= c
}

// pickCtx is pick, but at the TV2 version for a request whose ctx is marked
// withTxnV2.
func (v *apiVersions) pickCtx(ctx context.Context, req Request, caps map[int16]int16) (int16, error) {
	want := txnV2Version(req)
	if want < 0 || ctx.Value(txnV2Key{}) == nil {
		return v.pick(req, caps)
	}
	if fb := txnV2Fallback(req, want); fb >= 0 && !v.allows(req.APIKey(), want, caps) {
		want = fb
	}
	if !v.allows(req.APIKey(), want, caps) {
		return 0, fmt.Errorf("%w: transaction version 2 needs %s v%d: the broker (%s) supports v%d-%d",
			ErrUnsupportedVersion, APIName(req.APIKey()), want, v.describe(), v.min[req.APIKey()], v.max[req.APIKey()])
	}
	return want, nil
}

func produceHasIDs(r *ProduceRequest) bool {
	for i := range r.TopicData {
		if r.TopicData[i].TopicID == (UUID{}) {
			return false
		}
	}
	return true
}

func txnCommitHasIDs(r *TxnOffsetCommitRequest) bool {
	for i := range r.Topics {
		if r.Topics[i].TopicID == (UUID{}) {
			return false
		}
	}
	return true
}

func commitHasIDs(r *OffsetCommitRequest) bool {
	for i := range r.Topics {
		if r.Topics[i].TopicID == (UUID{}) {
			return false
		}
	}
	return true
}

// fetchOffsetsHasIDs reports whether every topic the groups list has an ID.
// A group that asks for all its topics (nil Topics) gets IDs back, which
// nameTopics resolves through the metadata cache.
func fetchOffsetsHasIDs(r *OffsetFetchRequest) bool {
	for i := range r.Groups {
		for j := range r.Groups[i].Topics {
			if r.Groups[i].Topics[j].TopicID == (UUID{}) {
				return false
			}
		}
	}
	return true
}
