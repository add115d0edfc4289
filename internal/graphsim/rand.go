package graphsim

import (
	"crypto/rand"
	"encoding/hex"
)

// splitmix64 is the finaliser of the SplitMix64 generator: a cheap,
// well-mixed bijection on uint64, enough to derive independent streams from
// (seed, index, salt) without any shared state.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Salts keep the streams of one device independent, so that DeviceID and
// OperatingSystem can be computed without drawing the whole device.
const (
	saltID     = 0x1d1d1d1d
	saltOS     = 0x05050505
	saltDevice = 0xdede0000
	saltBeta   = 0xbe7abe7a
	saltAdded  = 0xadd0add0
	// Mutations add the revision or check-in count to their salt, so each
	// revision of a device draws from a stream of its own.
	saltChange = 0xc4a00000
	saltSync   = 0x5c000000
	// The real values of the list-default properties (details.go), and
	// each ChangeDetails revision of a device (plus the revision).
	saltDetails      = 0xde7a1100
	saltDetailChange = 0xde7c0000
	// Detected apps (apps.go): the catalogue of each platform, each
	// device's appetite for apps, the listing order, the ids, and each
	// ChangeApps revision of a device (plus the revision).
	saltApps      = 0xa9900000
	saltAppetite  = 0xa99e7173
	saltAppOrder  = 0xa990dde7
	saltAppID     = 0xa991d000
	saltAppChange = 0xa9c00000
)

// rng is a SplitMix64 stream. A value, not a pointer, so generating a device
// allocates nothing for it.
type rng struct{ s uint64 }

func newRNG(seed int64, index int, salt uint64) rng {
	return rng{s: splitmix64(splitmix64(uint64(seed)^salt) + uint64(index)*0x9e3779b97f4a7c15)}
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return splitmix64(r.s)
}

// intn returns a value in [0, n). The modulo bias is irrelevant here.
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// shuffle permutes s in place (Fisher-Yates).
func shuffle[T any](r *rng, s []T) {
	for k := len(s) - 1; k > 0; k-- {
		j := r.intn(k + 1)
		s[k], s[j] = s[j], s[k]
	}
}

// chance reports true with probability pct/100.
func (r *rng) chance(pct int) bool { return r.intn(100) < pct }

// pick returns a random element of list.
func pick[T any](r *rng, list []T) T { return list[r.intn(len(list))] }

// weighted picks an index by integer weights.
func (r *rng) weighted(weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := r.intn(total)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}

// newUUID returns a random version 4 UUID for request, trace and activity
// ids. These ids are per response, not part of the deterministic data.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("graphsim: crypto/rand failed: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}
