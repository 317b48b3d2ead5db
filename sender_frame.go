package kpax

import (
	"cmp"
	"encoding/binary"
	"net"
	"slices"
	"unsafe"
)

// A sink encodes each Produce request frame itself, straight into one
// buffer: the size, the request header (with a zero correlation ID, which
// the connection's writer fills in, see conn.writeLoop) and the body, each
// batch encoded in place where the request carries it. A record's bytes are
// so copied once, from the Record into the frame, and the frame is written
// as it is; a request of the generated encoder (appendRequest) would copy
// every batch again. TestProduceFrame holds the two to the same bytes for
// every Produce version. The connection writes such frames from where they
// are (frameWriter, below), between the requests it encodes itself.

// produceFrameCorr is where a request frame holds its correlation ID: after
// the size (4 bytes), the API key (2) and the version (2).
const produceFrameCorr = 8

// frameSize is what a request of the batches is likely to take, encoded:
// the request's own fields, a batch header and partition entry each, and
// their records' buffered sizes (recordSize, more than a record's encoding
// takes), scaled by the sink's last compression ratio when compressed. A
// frame that needs more only grows its buffer.
func (s *sink) frameSize(bs []*batch) (n, data int) {
	p := s.p
	n = 128 + len(p.cl.cfg.clientID)
	if p.txn != nil {
		n += len(p.txn.id)
	}
	for _, b := range bs {
		n, data = n+96+len(b.ps.tp.topic), data+b.bytes
	}
	if p.cfg.compression == CompressionNone || s.ratio == 0 {
		return n + data, data
	}
	return n + int(float64(data)*s.ratio), data
}

// noteRatio keeps a compressed frame's size over its records' buffered
// sizes (with a quarter more, at most 1) for the next frame's estimate.
func (s *sink) noteRatio(frame, data int) {
	if s.p.cfg.compression != CompressionNone && data > 0 {
		s.ratio = min(1, max(1.0/256, 1.25*float64(frame)/float64(data)))
	}
}

// frameBuf returns an empty buffer with room for n bytes: the sink's free one if it is large
// enough, else a new one. Request sizes vary with how many partitions have a batch ready, so a
// free buffer much larger than n (over 4n and 1 MiB) is used too, for up to oversizedFrames
// frames in a row; after that, and always under a memory budget (kept buffers are outside it),
// it is dropped, so that a burst of large requests pins nothing for long. kept says that buf is
// the free one.
func (s *sink) frameBuf(n int) (buf []byte, kept bool) {
	if b, ok := s.freeBuf(); ok && cap(b) >= n {
		if cap(b) <= max(4*n, 1<<20) {
			s.oversized = 0
			return b[:0], true
		}
		if s.p.budget == nil && s.oversized < oversizedFrames {
			s.oversized++
			return b[:0], true
		}
		s.oversized = 0
	}
	return make([]byte, 0, n+n/4), false // room for the next, if a little larger
}

// maxUnwritten is how many of a sink's frames may wait for their connection's writer while it
// encodes the next one. A frame encoded further ahead would only wait in memory (the writer
// takes the queued ones together, and the broker's socket is what they wait for), while its
// records wait just as well unencoded: with requests of 1 MB or more, encoding ahead up to
// the requests in flight held that many more frames.
const maxUnwritten = 2

// outFrame is a frame handed to a connection: its call, and where its buffer starts (the
// writer gives the buffer back once written).
type outFrame struct {
	call *call
	conn *conn
	data *byte
}

// ended reports whether the frame's call ended, or its connection closed: a call still in the
// connection's queue when it closed never ends, and its frame is not written.
func (o outFrame) ended() bool {
	select {
	case <-o.call.done:
		return true
	case <-o.conn.done:
		return true
	default:
		return false
	}
}

// freeBuf takes a free request buffer, if there is one. While maxUnwritten frames are still
// unwritten (and no memory budget counts them) it waits for one to come back, for the oldest
// one's call to end or its connection to close (a closed connection drops the frames it did
// not write), or for the producer to stop. It runs on the sink's run goroutine, with no lock
// held.
func (s *sink) freeBuf() ([]byte, bool) {
	for {
		for len(s.out) > 0 && s.out[0].ended() {
			s.out = slices.Delete(s.out, 0, 1)
		}
		select {
		case b := <-s.bufs:
			s.returned(b)
			return b, true
		default:
		}
		if len(s.out) < maxUnwritten || s.p.budget != nil { // a budget bounds frames by itself
			return nil, false
		}
		select {
		case b := <-s.bufs:
			s.returned(b)
			return b, true
		case <-s.out[0].call.done:
		case <-s.out[0].conn.done:
		case <-s.stopc:
			return nil, false
		case <-s.p.ctx.Done():
			return nil, false
		}
	}
}

// returned forgets the unwritten frame whose buffer b is (none when b is the buffer of a
// request that was never queued, see releaseBuf).
func (s *sink) returned(b []byte) {
	d := unsafe.SliceData(b)
	for i, o := range s.out {
		if o.data == d {
			s.out = slices.Delete(s.out, i, i+1)
			return
		}
	}
}

// oversizedFrames is how many frames in a row may use a free buffer much larger than they need.
const oversizedFrames = 64

// sortByTopic orders a request's batches by topic, so that each topic's
// partitions are one run of them (the request groups partitions by topic).
func sortByTopic(bs []*batch) {
	byTopic := func(a, b *batch) int { return cmp.Compare(a.ps.tp.topic, b.ps.tp.topic) }
	if !slices.IsSortedFunc(bs, byTopic) {
		slices.SortStableFunc(bs, byTopic)
	}
}

// frameEncoding is how a sink encodes the batches of one request.
type frameEncoding struct {
	version    int16
	flex       bool
	attrs      BatchAttrs
	idempotent bool
}

// encodeProduce encodes the request frame of req, whose TopicData names
// the topics and partitions of f.batches in the same order (sortByTopic,
// addToProduce), into f.buf, and points each partition's Records at its
// batch in the frame.
func (s *sink) encodeProduce(f *flight, req *ProduceRequest, e frameEncoding) error {
	p := s.p
	size, data := s.frameSize(f.batches)
	buf, kept := s.frameBuf(size)
	start := buf[:cap(buf)]
	buf = appendRequestHeader(buf, req, e.version, 0, p.cl.cfg.clientID)
	v, flex := e.version, e.flex
	if v >= 3 {
		buf = appendNullableString(buf, req.TransactionalID, flex)
	}
	buf = appendInt16(buf, req.Acks)
	buf = appendInt32(buf, req.TimeoutMs)
	buf = appendArrayLen(buf, len(req.TopicData), false, false, flex)
	s.ends = s.ends[:0] // start and end of each batch's bytes in buf
	k := 0
	for i := range req.TopicData {
		t := &req.TopicData[i]
		if v >= 13 {
			buf = appendUUID(buf, t.TopicID)
		} else {
			buf = appendString(buf, t.Name, flex)
		}
		buf = appendArrayLen(buf, len(t.PartitionData), false, false, flex)
		for j := range t.PartitionData {
			buf = appendInt32(buf, t.PartitionData[j].Index)
			var err error
			if buf, err = s.appendBatchField(buf, f.batches[k], e); err != nil {
				f.buf = buf
				return err
			}
			k++
			if flex {
				buf = append(buf, 0) // no tagged fields
			}
		}
		if flex {
			buf = append(buf, 0)
		}
	}
	if flex {
		buf = append(buf, 0)
	}
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	s.noteRatio(len(buf), data)
	f.buf = buf
	// Still the free buffer if it did not grow: see sink.send's budget charge.
	f.kept = kept && cap(buf) == cap(start) && cap(buf) > 0 && &buf[:1][0] == &start[0]
	k = 0
	for i := range req.TopicData {
		for j := range req.TopicData[i].PartitionData {
			req.TopicData[i].PartitionData[j].Records = buf[s.ends[2*k]:s.ends[2*k+1]:s.ends[2*k+1]]
			k++
		}
	}
	return nil
}

// appendBatchField appends a partition's Records field: the length (int32,
// or N+1 as an unsigned varint in flexible versions) and the batch, encoded
// in place. A varint length takes the room its budget needs; when the
// encoded batch needs fewer or more bytes, the batch moves.
func (s *sink) appendBatchField(buf []byte, b *batch, e frameEncoding) ([]byte, error) {
	p := s.p
	width := 4
	if e.flex {
		width = uvarintLen(uint64(b.bytes+96) + 1)
	}
	start := len(buf)
	buf = append(buf, make([]byte, width)...)
	body := len(buf)
	var err error
	if e.version >= 3 {
		h := NewBatchHeader()
		h.Attributes = e.attrs
		if e.idempotent && b.seq >= 0 {
			h.ProducerID, h.ProducerEpoch, h.BaseSequence = b.pid.id, b.pid.epoch, b.seq
		}
		buf, err = appendRecordBatch(&s.enc, buf, h, batchRecords(b.recs), p.cfg.compression, p.cfg.compressionLevel)
	} else {
		magic := int8(1)
		if e.version < 2 {
			magic = 0
		}
		buf, err = appendMessageSet(&s.enc, buf, magic, 0, batchRecords(b.recs), p.cfg.compression, p.cfg.compressionLevel)
	}
	if err != nil {
		return buf, err
	}
	n := len(buf) - body
	if !e.flex {
		binary.BigEndian.PutUint32(buf[start:], uint32(n))
		s.ends = append(s.ends, body, len(buf))
		return buf, nil
	}
	if w := uvarintLen(uint64(n) + 1); w != width {
		if w > width {
			buf = append(buf, make([]byte, w-width)...)
		}
		copy(buf[start+w:], buf[body:body+n])
		buf, body = buf[:start+w+n], start+w
	}
	binary.PutUvarint(buf[start:], uint64(n)+1)
	s.ends = append(s.ends, body, len(buf))
	return buf, nil
}

// uvarintLen is the length of v as an unsigned varint.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// frameWriter gathers the frames of the requests written together: the
// ones it encodes go into one buffer, the ones encoded by their callers
// (call.pre) are written from where they are, in between (writev).
type frameWriter struct {
	buf  []byte
	pres []*call // calls with pre-encoded frames, after buf[:at[i]] (their order)
	at   []int
	vecs net.Buffers
}

func (w *frameWriter) reset() {
	if cap(w.buf) > 4*readChunk {
		w.buf = nil // do not pin a huge buffer after one big request
	}
	w.buf, w.pres, w.at = w.buf[:0], w.pres[:0], w.at[:0]
}

// add adds a call's frame, with its correlation ID, and returns its size.
func (w *frameWriter) add(cl *call, clientID string) int {
	switch {
	case cl.raw:
		w.buf = appendInt32(w.buf, int32(len(cl.token)))
		w.buf = append(w.buf, cl.token...)
		return 4 + len(cl.token)
	case cl.pre != nil:
		binary.BigEndian.PutUint32(cl.pre[produceFrameCorr:], uint32(cl.corr))
		w.pres, w.at = append(w.pres, cl), append(w.at, len(w.buf))
		return len(cl.pre)
	}
	start := len(w.buf)
	w.buf = appendRequest(w.buf, cl.req, cl.version, cl.corr, clientID)
	return len(w.buf) - start
}

// writeTo writes the frames in order, in one write if it can.
func (w *frameWriter) writeTo(nc net.Conn) error {
	if len(w.pres) == 0 {
		_, err := nc.Write(w.buf)
		return err
	}
	from := 0
	for i, cl := range w.pres {
		if w.at[i] > from {
			w.vecs = append(w.vecs, w.buf[from:w.at[i]])
		}
		w.vecs, from = append(w.vecs, cl.pre), w.at[i]
	}
	if from < len(w.buf) {
		w.vecs = append(w.vecs, w.buf[from:])
	}
	all := w.vecs[:len(w.vecs):len(w.vecs)]
	v := w.vecs
	_, err := v.WriteTo(nc)
	clear(all) // hold no frame once written
	for _, cl := range w.pres {
		pre := cl.pre
		cl.pre = nil
		select {
		case cl.preFree <- pre[:0]:
		default:
		}
	}
	clear(w.pres)
	w.vecs = all[:0]
	return err
}
