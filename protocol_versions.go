package kpax

import "math"

// pathMaxVersion caps the version a request is sent at below what the
// generated code can encode (its MaxVersion) where a newer version means
// more than new fields: a different protocol that the client's own paths
// do not speak yet. Each cap says why. The broker's and the user's caps
// (WithMaxVersion) apply as well; the lowest wins.
func pathMaxVersion(req Request) int16 {
	switch r := req.(type) {
	case *ProduceRequest:
		if r.TransactionalID != nil {
			// v12+ is transactions V2 (KIP-890): the broker adds the
			// partition to the transaction itself and bumps the epoch at
			// each EndTxn, which the transactional paths do not follow.
			return 11
		}
		return 12 // v13 names topics by ID (KIP-516)
	case *OffsetCommitRequest, *OffsetFetchRequest:
		return 9 // v10 names topics by ID (KIP-848)
	case *TxnOffsetCommitRequest:
		// v5+ is transactions V2 (KIP-890), v6 names topics by ID.
		return 4
	case *ApiVersionsRequest:
		// v5 (KIP-1242) carries the cluster and node the client means to
		// reach; a 4.4 broker rejects it (INVALID_REQUEST) when they are
		// left unset, and the connection does not fill them yet.
		return 4
	case *AddPartitionsToTxnRequest:
		// v4+ is the brokers' form (KIP-890 verification), batched by
		// transactional ID; a client sends v3.
		return 3
	case *EndTxnRequest:
		// v5 is transactions V2 (KIP-890): the broker bumps the producer
		// epoch at every commit and returns it, which the client must adopt.
		return 4
	}
	return math.MaxInt16
}
