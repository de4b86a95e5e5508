package benchwork

import (
	"encoding/binary"
	"math/rand"
)

// KeySize and ValueSize are the sizes of the keys and of the small values
// every workload uses, unless it says otherwise.
const (
	KeySize   = 16
	ValueSize = 100
)

// SeqKey writes the i-th sequential key into k (KeySize bytes): the
// big-endian i, so byte order is numeric order.
func SeqKey(k []byte, i uint64) []byte {
	binary.BigEndian.PutUint64(k[0:8], 0)
	binary.BigEndian.PutUint64(k[8:16], i)
	return k[:KeySize]
}

// RandKey writes the i-th pseudo-random key into k: a bijective mix of i,
// so keys of distinct i never collide and arrive in random order.
func RandKey(k []byte, i uint64) []byte {
	binary.BigEndian.PutUint64(k[0:8], mix(i))
	binary.BigEndian.PutUint64(k[8:16], mix(i^0x9e3779b97f4a7c15))
	return k[:KeySize]
}

// mix is splitmix64's finalizer: a bijection on uint64.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// values hands out random value bytes as slices of one shared pool, so
// producing a value costs nothing and allocates nothing.
type values struct{ pool []byte }

func newValues(seed int64) *values {
	b := make([]byte, 1<<20)
	rand.New(rand.NewSource(seed)).Read(b)
	return &values{pool: b}
}

// get returns n random-looking bytes for the i-th value (n <= 1 MiB).
func (v *values) get(i uint64, n int) []byte {
	off := int((i * 7919) % uint64(len(v.pool)-n+1))
	return v.pool[off : off+n : off+n]
}

// keyArena gives each transaction fresh key buffers (engines may keep
// references to a key until commit), carved from one slice per
// transaction.
type keyArena struct{ buf []byte }

func (a *keyArena) reset(n int) {
	if cap(a.buf) < n*KeySize {
		a.buf = make([]byte, 0, n*KeySize)
	}
	a.buf = a.buf[:0]
}

// next returns a new KeySize-byte buffer. After reset(n), at most n calls.
func (a *keyArena) next() []byte {
	l := len(a.buf)
	a.buf = a.buf[:l+KeySize]
	return a.buf[l : l+KeySize : l+KeySize]
}
