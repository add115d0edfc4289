package intune

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
)

// snapshot is the device state as releases before the device records
// (deviceRecord, device_state.go) held it: each device's id and content
// hash, and, with details, what was known of each device's details. It is
// read only to take up a state an older release saved (decodeSnapshot,
// deviceStateBuilder.addSnapshot); tests build it to stand for one. Intune
// ids are GUIDs, kept as 16 bytes; any other id (a stand-in's) as text.
type snapshot struct {
	hashes  byID[uint64]
	details *detailsSet // nil: the input keeps no details
}

func newSnapshot(capacity int) *snapshot { return &snapshot{hashes: newByID[uint64](capacity)} }

func (s *snapshot) len() int { return s.hashes.len() }

func (s *snapshot) put(id string, hash uint64) { s.hashes.put(id, hash) }

func (s *snapshot) get(id string) (uint64, bool) { return s.hashes.get(id) }

// byID maps device ids to values: a GUID (as Graph writes Intune's ids) by
// its 16 bytes, any other id by its text.
type byID[V any] struct {
	guids map[[16]byte]V
	other map[string]V
}

func newByID[V any](capacity int) byID[V] {
	return byID[V]{guids: make(map[[16]byte]V, capacity), other: map[string]V{}}
}

func (m byID[V]) len() int { return len(m.guids) + len(m.other) }

func (m byID[V]) put(id string, v V) {
	if g, ok := parseGUID(id); ok {
		m.guids[g] = v
		return
	}
	m.other[id] = v
}

func (m byID[V]) get(id string) (V, bool) {
	if g, ok := parseGUID(id); ok {
		v, found := m.guids[g]
		return v, found
	}
	v, found := m.other[id]
	return v, found
}

// each calls fn with every entry: its GUID, or else (g zero) its text id.
func (m byID[V]) each(fn func(g [16]byte, id string, v V)) {
	for g, v := range m.guids {
		fn(g, "", v)
	}
	for id, v := range m.other {
		fn([16]byte{}, id, v)
	}
}

// idOf is the text of the id each named.
func (m byID[V]) idOf(g [16]byte, id string) string {
	if id == "" {
		return formatGUID(g)
	}
	return id
}

// parseGUID reads a lower-case canonical GUID (as Graph writes ids). Any
// other spelling is kept as text, so that the id is given back unchanged.
func parseGUID(id string) (g [16]byte, ok bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return g, false
	}
	var hexDigits [32]byte
	n := 0
	for i := 0; i < 36; i++ {
		switch c := id[i]; {
		case i == 8 || i == 13 || i == 18 || i == 23:
		case c >= '0' && c <= '9' || c >= 'a' && c <= 'f':
			hexDigits[n] = c
			n++
		default:
			return g, false
		}
	}
	if _, err := hex.Decode(g[:], hexDigits[:]); err != nil {
		return g, false
	}
	return g, true
}

func formatGUID(g [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], g[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], g[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], g[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], g[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], g[10:16])
	return string(b[:])
}

// fingerprinter hashes a device's content, leaving out the properties that
// move on every check-in without the device changing.
type fingerprinter struct {
	ignore map[string]bool
}

// fingerprint returns the device's id and content hash. It reads the raw
// bytes once and builds no value: each kept member's key and value bytes
// are hashed, in the order Graph sent them.
func (f fingerprinter) fingerprint(device []byte) (string, uint64, error) {
	d := xxhash.New()
	var idLit []byte
	var keyErr error
	err := graph.EachMember(device, func(key []byte, escaped bool, value []byte) {
		// string(key) in a comparison or a map index is not allocated.
		isID, ignored := string(key) == "id", f.ignore[string(key)]
		if escaped {
			name, err := graph.DecodeKey(key, escaped)
			if err != nil {
				keyErr = err
				return
			}
			isID, ignored = name == "id", f.ignore[name]
		}
		if isID {
			idLit = value
		}
		if ignored {
			return
		}
		_, _ = d.Write(key)
		_, _ = d.Write([]byte{0})
		_, _ = d.Write(value)
		_, _ = d.Write([]byte{0})
	})
	if err == nil {
		err = keyErr
	}
	id, err := scannedID(idLit, err)
	return id, d.Sum64(), err
}

// scannedID is the id of a device whose members were walked: idLit is the
// literal of its "id" (nil when it has none), err the walk's error.
func scannedID(idLit []byte, err error) (string, error) {
	if err != nil {
		return "", fmt.Errorf("device is not a JSON object: %w", err)
	}
	if idLit == nil {
		return "", errors.New(`device has no "id"`)
	}
	id, err := graph.DecodeString(idLit)
	if err != nil || id == "" {
		return "", fmt.Errorf(`device "id" is not a non-empty string: %.40s`, idLit)
	}
	return id, nil
}

// The device state's kind in a chunked state (state_chunks.go), and the
// record kinds the release before the device records wrote there (still
// read, by deviceStateBuilder.addChunk): each a kind byte, then
//
//   - snapshotHashRecord: the id (appendIDKey) and the 8-byte hash;
//   - snapshotDetailsRecord: a details record (appendDetailsRecord).
const (
	snapshotKind          = "devices"
	snapshotHashRecord    = 'h'
	snapshotDetailsRecord = 'd'
)

// The single-value format of releases before the chunked state
// (intune-snapshot/2): a magic, the count of hashes and one record per
// device (a kind byte, the id: 16 bytes for a GUID, length-prefixed text
// otherwise, and the hash), then the details section (details_state.go):
// its count and one record per device. Version 1, which releases before
// details wrote, is the magic "intune-snapshot/1" and the hash records
// alone, up to the end. Both are read, and the next save writes the
// chunked state in their place.
var (
	snapshotMagic   = []byte("intune-snapshot/2\n")
	snapshotMagicV1 = []byte("intune-snapshot/1\n")
)

// encode writes the single-value format; tests use it to stand for a state
// an older release saved.
func (s *snapshot) encode() []byte {
	size := len(snapshotMagic) + 10 + 25*s.hashes.len() + 10
	if s.details != nil {
		size += s.details.encodedSize()
	}
	out := make([]byte, 0, size)
	out = append(out, snapshotMagic...)
	out = binary.AppendUvarint(out, uint64(s.hashes.len()))
	s.hashes.each(func(g [16]byte, id string, h uint64) {
		out = appendIDKey(out, g, id)
		out = binary.LittleEndian.AppendUint64(out, h)
	})
	if s.details == nil {
		return binary.AppendUvarint(out, 0)
	}
	return s.details.appendRecords(out)
}

func decodeSnapshot(b []byte) (*snapshot, error) {
	v1 := hasPrefix(b, snapshotMagicV1)
	if !v1 && !hasPrefix(b, snapshotMagic) {
		return nil, errors.New("not a device snapshot this input wrote")
	}
	b = b[len(snapshotMagic):]
	capacity := len(b) / 25
	count := ^uint64(0) // version 1 has no count: records up to the end
	if !v1 {
		n, w := binary.Uvarint(b)
		if w <= 0 {
			return nil, errors.New("snapshot is truncated")
		}
		count, b = n, b[w:]
	}
	s := newSnapshot(int(min(count, uint64(capacity))))
	for i := uint64(0); i < count && (!v1 || len(b) > 0); i++ {
		g, id, rest, err := readIDKey(b)
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		if len(rest) < 8 {
			return nil, errors.New("snapshot is truncated")
		}
		if id == "" {
			s.hashes.guids[g] = binary.LittleEndian.Uint64(rest)
		} else {
			s.hashes.other[id] = binary.LittleEndian.Uint64(rest)
		}
		b = rest[8:]
	}
	if v1 {
		return s, nil
	}
	details, rest, err := readDetailsRecords(b)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("snapshot has data after its records")
	}
	if details.len() > 0 {
		s.details = details
	}
	return s, nil
}

// appendIDKey writes an id as the cache formats do: a kind byte (0 for a
// GUID, 1 for text), then the 16 bytes, or the length-prefixed text.
func appendIDKey(out []byte, g [16]byte, id string) []byte {
	if id == "" {
		out = append(out, 0)
		return append(out, g[:]...)
	}
	out = append(out, 1)
	out = binary.AppendUvarint(out, uint64(len(id)))
	return append(out, id...)
}

// readIDKey reads what appendIDKey wrote.
func readIDKey(b []byte) (g [16]byte, id string, rest []byte, err error) {
	if len(b) == 0 {
		return g, "", nil, errors.New("truncated")
	}
	switch b[0] {
	case 0:
		if len(b) < 17 {
			return g, "", nil, errors.New("truncated")
		}
		copy(g[:], b[1:17])
		return g, "", b[17:], nil
	case 1:
		n, w := binary.Uvarint(b[1:])
		if w <= 0 || n == 0 || uint64(len(b)-1-w) < n {
			return g, "", nil, errors.New("truncated")
		}
		return g, string(b[1+w : 1+w+int(n)]), b[1+w+int(n):], nil
	}
	return g, "", nil, errors.New("an unknown record")
}

func hasPrefix(b, prefix []byte) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == string(prefix)
}
