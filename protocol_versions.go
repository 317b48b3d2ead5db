package kpax

import "math"

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
			// partition to the transaction itself and bumps the epoch at
			// each EndTxn, which the transactional paths do not follow.
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
		// v5+ is transactions V2 (KIP-890); v6 also names topics by ID,
		// which fillTopicIDs and nameTopics handle once V2 is spoken.
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
		// epoch at every commit and returns it, which the client must adopt.
		return 4
	}
	return math.MaxInt16
}

func produceHasIDs(r *ProduceRequest) bool {
	for i := range r.TopicData {
		if r.TopicData[i].TopicID == (UUID{}) {
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
