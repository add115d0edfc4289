package graphsim

import (
	"slices"
	"strconv"
)

// Tests of change and deletion detection need a tenant that changes between
// two exports. Devices stay functions of (seed, index); a mutation only
// records, per index, how many times the device changed or checked in, or
// that it is gone, so an unmutated tenant of a million devices still costs
// nothing. The record is immutable once published: each mutation copies
// what it alters and swaps the whole, and each request reads one snapshot,
// so serving never waits for a mutation and a page never sees half of one.

// tenantState is one published version of the mutations.
type tenantState struct {
	devices int                // Config.Devices plus added devices: indexes 0..devices-1 exist
	changes map[int]uint32     // index -> revision (Change calls)
	touches map[int]uint32     // index -> check-ins without change (Touch calls)
	removed map[int]struct{}   // indexes no longer listed
	gone    [osCount + 1][]int // removed indexes in order: all at [osCount], those of each OS at [os]

	// detailRevs: index -> details revision (ChangeDetails calls), which
	// only a single-device GET selecting list-default properties shows.
	detailRevs map[int]uint32

	// Detected apps (appmutations.go).
	appsOf    map[int][]int32 // index -> its whole inventory, ascending, for devices ChangeApps changed
	appRevs   map[int]uint32  // index -> ChangeApps calls
	extraApps []appEntry      // apps ChangeApps created, with the indexes after the base catalogue
	appCell   *appViewCell    // what this state makes of the apps, derived on first use
}

func (s *Server) state() *tenantState { return s.tenant.Load() }

// mutate publishes a new state made by fn from a shallow copy of the
// current one; fn must copy any map or slice before writing to it.
func (s *Server) mutate(fn func(st *tenantState)) *tenantState {
	s.mutMu.Lock()
	defer s.mutMu.Unlock()
	st := *s.tenant.Load()
	fn(&st)
	st.appCell = &appViewCell{}
	s.tenant.Store(&st)
	return &st
}

// Change gives each listed device a new revision: its complianceState,
// osVersion, freeStorageSpaceInBytes, deviceName and lastSyncDateTime (and
// with the compliance its grace period) take new values derived from
// (seed, index, revision), each different from the previous revision's. Its
// id and everything else stay. Indexes that do not exist are ignored.
func (s *Server) Change(indices ...int) {
	s.mutate(func(st *tenantState) { st.changes = bump(st.changes, indices, st.devices) })
}

// ChangeDetails gives each device a new details revision: the real
// values of notes, physicalMemoryInBytes and (beta, devices with a
// battery) hardwareInformation's batteryLevelPercentage change, each to a
// value different from the previous revision's, and nothing a list shows
// moves, lastSyncDateTime included. A client notices only by fetching the
// details again (a single-device GET with $select). Indexes that do not
// exist are ignored.
func (s *Server) ChangeDetails(indices ...int) {
	s.mutate(func(st *tenantState) { st.detailRevs = bump(st.detailRevs, indices, st.devices) })
}

// Touch records a check-in without any change: only lastSyncDateTime moves.
// Indexes that do not exist are ignored.
func (s *Server) Touch(indices ...int) {
	s.mutate(func(st *tenantState) { st.touches = bump(st.touches, indices, st.devices) })
}

func bump(m map[int]uint32, indices []int, n int) map[int]uint32 {
	c := make(map[int]uint32, len(m)+len(indices))
	for k, v := range m {
		c[k] = v
	}
	for _, i := range indices {
		if i >= 0 && i < n {
			c[i]++
		}
	}
	return c
}

// Remove deletes devices from the tenant: they leave listings and
// @odata.count. Their ids stay valid in skip tokens, which are keysets, so
// a listing that started before the removal goes on where it was. Indexes
// that do not exist or are already removed are ignored.
func (s *Server) Remove(indices ...int) {
	s.mutate(func(st *tenantState) {
		removed := make(map[int]struct{}, len(st.removed)+len(indices))
		for i := range st.removed {
			removed[i] = struct{}{}
		}
		for _, i := range indices {
			if i >= 0 && i < st.devices {
				removed[i] = struct{}{}
			}
		}
		st.removed = removed
		var gone [osCount + 1][]int
		gone[osCount] = make([]int, 0, len(removed))
		for i := range removed {
			gone[osCount] = append(gone[osCount], i)
		}
		slices.Sort(gone[osCount])
		for _, i := range gone[osCount] {
			os := s.osOf(i)
			gone[os] = append(gone[os], i)
		}
		st.gone = gone
	})
}

// Add enrols n new devices, with the next free indexes, and returns the
// first of them (the index the next device would get when n <= 0). They
// are generated from (seed, index) like the others and listed last.
func (s *Server) Add(n int) (first int) {
	s.mutate(func(st *tenantState) {
		first = st.devices
		st.devices += max(n, 0)
	})
	return first
}

// Count returns how many devices an unfiltered listing holds now.
func (s *Server) Count() int {
	st := s.state()
	return st.devices - len(st.removed)
}

// Listed returns the indexes of the devices an unfiltered listing holds
// now, in listing order.
func (s *Server) Listed() []int {
	st := s.state()
	out := make([]int, 0, st.devices-len(st.removed))
	for i := 0; i < st.devices; i++ {
		if st.listed(i) {
			out = append(out, i)
		}
	}
	return out
}

func (st *tenantState) listed(i int) bool {
	_, gone := st.removed[i]
	return !gone
}

// removedBefore counts the removed devices below pos, of operating system
// os or, with osCount, of any.
func (st *tenantState) removedBefore(os osKind, pos int) int {
	n, _ := slices.BinarySearch(st.gone[os], pos)
	return n
}

// current fills d with device i as the tenant holds it now.
func (s *Server) current(st *tenantState, i int, d *device) {
	s.generate(i, d)
	if len(st.changes) == 0 && len(st.touches) == 0 {
		return
	}
	changes, touches := st.changes[i], st.touches[i]
	if changes == 0 && touches == 0 {
		return
	}
	// Each revision starts from the previous one, so that every changed
	// value differs from the one before it.
	var r rng
	for k := uint32(1); k <= changes; k++ {
		r = newRNG(d.seed, i, saltChange+uint64(k))
		d.compliance = other(&r, complianceStates, d.compliance)
		d.osVersion = other(&r, osVersions[d.os], d.osVersion)
		free := d.hw.storageGB*1_000_000_000*int64(5+r.intn(75))/100 - int64(r.intn(1<<20))
		if free == d.free {
			free -= 4096
		}
		d.free = free
		name := s.deviceName(&r, d, d.firstName)
		if name == d.name {
			name += " (" + strconv.Itoa(int(k)) + ")"
		}
		d.name = name
	}
	// Every event, change or check-in, moves lastSyncDateTime into an hour
	// of its own after dataNow, so it only ever moves forward. The count
	// decides it, not the order of the calls.
	events := int64(changes) + int64(touches)
	sync := newRNG(d.seed, i, saltSync+uint64(events))
	d.lastSync = dataNow + events*3600 + int64(sync.intn(3600))
	if changes > 0 {
		// The grace period follows the compliance, dated from the change
		// rather than from the last check-in, which Touch alone moves.
		// It draws on from the last revision's stream.
		changed := dataNow + int64(changes)*3600
		switch d.compliance {
		case "inGracePeriod":
			d.graceExpiry = changed + int64(day+r.intn(3*day))
		case "noncompliant":
			d.graceExpiry = changed - int64(r.intn(10*day))
		default:
			d.graceExpiry = foreverTime
		}
	}
}

// other picks an element of list different from cur, if there is one.
func other[T comparable](r *rng, list []T, cur T) T {
	k := r.intn(len(list))
	for n := 0; n < len(list); n++ {
		if v := list[(k+n)%len(list)]; v != cur {
			return v
		}
	}
	return cur
}
