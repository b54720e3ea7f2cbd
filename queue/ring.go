package queue

// recordRing holds a room's kept records in a ring, so trimming the oldest
// moves nothing and appending copies each record once. Capacity is a power
// of two and doubles when full; a room settles at about twice its
// retention.
type recordRing struct {
	buf  []Record
	head int // index of the oldest record
	n    int
}

func (r *recordRing) len() int { return r.n }

// at returns the i-th oldest record.
func (r *recordRing) at(i int) *Record { return &r.buf[(r.head+i)&(len(r.buf)-1)] }

func (r *recordRing) push(recs []Record) {
	if r.n+len(recs) > len(r.buf) {
		r.grow(r.n + len(recs))
	}
	for i := range recs {
		*r.at(r.n + i) = recs[i]
	}
	r.n += len(recs)
}

func (r *recordRing) grow(need int) {
	size := max(len(r.buf)*2, 64)
	for size < need {
		size *= 2
	}
	buf := make([]Record, size)
	r.copyOut(buf, 0, r.n)
	r.buf, r.head = buf, 0
}

// copyOut copies n records from the i-th oldest on into dst.
func (r *recordRing) copyOut(dst []Record, i, n int) {
	start := (r.head + i) & (len(r.buf) - 1)
	k := copy(dst[:n], r.buf[start:])
	copy(dst[k:n], r.buf)
}

// drop forgets the n oldest records.
func (r *recordRing) drop(n int) {
	for i := 0; i < n; i++ {
		*r.at(i) = Record{} // release the event bytes
	}
	r.head = (r.head + n) & (len(r.buf) - 1)
	r.n -= n
}
