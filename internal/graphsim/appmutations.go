package graphsim

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Mutations reach the apps through the tenant state (mutations.go): a
// removed device leaves every app it held, and ChangeApps records, per
// device, its whole new inventory, plus the apps (new versions) that no
// base device holds. The base index stays as built; each state derives,
// once and on first use, what it makes of it (appView): every app's device
// count, the apps still listed, and which changed devices hold each app.

// appView is a tenant state's view of the apps.
type appView struct {
	ix     *appIndex
	extra  []appEntry // the state's apps beyond the base catalogue
	total  int        // apps with an id: the base catalogue and extra
	counts []int32    // device count of each app
	listed []int32    // the apps with a device, ascending: the listing
	// added holds, per app, the devices whose changed inventory holds it,
	// ascending; the base lists of those devices no longer apply.
	added map[int32][]int32
	plain bool // no mutation touches an app: the base lists apply as they are
}

// appViewCell is where a state keeps its view once derived.
type appViewCell struct {
	once sync.Once
	v    *appView
}

// appView returns st's view of the apps.
func (s *Server) appView(st *tenantState) *appView {
	c := st.appCell
	c.once.Do(func() { c.v = s.buildAppView(st) })
	return c.v
}

func (s *Server) buildAppView(st *tenantState) *appView {
	ix := s.appIndex()
	v := &appView{ix: ix, extra: st.extraApps, total: len(ix.apps) + len(st.extraApps)}
	v.counts = make([]int32, v.total)
	for a := range ix.apps {
		v.counts[a] = ix.appOff[a+1] - ix.appOff[a]
	}
	v.plain = len(st.removed) == 0 && len(st.appsOf) == 0
	if !v.plain {
		// Only the devices a mutation touched change the counts.
		for i := range st.removed {
			if _, changed := st.appsOf[i]; !changed {
				for _, a := range ix.appsOf(i) {
					v.counts[a]--
				}
			}
		}
		changed := slices.Sorted(maps.Keys(st.appsOf))
		v.added = make(map[int32][]int32)
		for _, i := range changed {
			for _, a := range ix.appsOf(i) {
				v.counts[a]--
			}
			if !st.listed(i) {
				continue
			}
			for _, a := range st.appsOf[i] {
				v.counts[a]++
				v.added[a] = append(v.added[a], int32(i))
			}
		}
	}
	v.listed = make([]int32, 0, v.total)
	for a, c := range v.counts {
		if c > 0 {
			v.listed = append(v.listed, int32(a))
		}
	}
	return v
}

// entry returns app a.
func (v *appView) entry(a int) *appEntry {
	if a < len(v.ix.apps) {
		return &v.ix.apps[a]
	}
	return &v.extra[a-len(v.ix.apps)]
}

// lists reports whether app a is in the listing: it exists and a device
// holds it.
func (v *appView) lists(a int) bool { return a >= 0 && a < v.total && v.counts[a] > 0 }

// hidden reports whether device i's base inventory no longer applies.
func (st *tenantState) hidden(i int32) bool {
	if _, gone := st.removed[int(i)]; gone {
		return true
	}
	_, changed := st.appsOf[int(i)]
	return changed
}

// devices appends to out the devices that hold app a now, with an index
// above after (-1: from the first), ascending, at most n of them (n < 0:
// all), and reports whether more follow.
func (v *appView) devices(st *tenantState, a, after, n int, out []int32) ([]int32, bool) {
	base := v.ix.devicesOf(a)
	i, _ := slices.BinarySearch(base, int32(after+1))
	add := v.added[int32(a)]
	j, _ := slices.BinarySearch(add, int32(after+1))
	for {
		if !v.plain {
			for i < len(base) && st.hidden(base[i]) {
				i++
			}
		}
		nb, na := int32(math.MaxInt32), int32(math.MaxInt32)
		if i < len(base) {
			nb = base[i]
		}
		if j < len(add) {
			na = add[j]
		}
		if nb == math.MaxInt32 && na == math.MaxInt32 {
			return out, false
		}
		if n >= 0 && len(out) == n {
			return out, true
		}
		if nb < na {
			out = append(out, nb)
			i++
		} else {
			out = append(out, na)
			j++
		}
	}
}

// devicesBefore counts the devices of app a with an index up to after:
// where a page starting after it sits in the listing.
func (v *appView) devicesBefore(st *tenantState, a, after int) int {
	base := v.ix.devicesOf(a)
	i, _ := slices.BinarySearch(base, int32(after+1))
	j, _ := slices.BinarySearch(v.added[int32(a)], int32(after+1))
	if v.plain {
		return i + j
	}
	n := j
	for _, d := range base[:i] {
		if !st.hidden(d) {
			n++
		}
	}
	return n
}

// deviceApps returns the apps device i holds now, ascending; the caller
// checks that the device is listed.
func (v *appView) deviceApps(st *tenantState, i int) []int32 {
	if l, ok := st.appsOf[i]; ok {
		return l
	}
	return v.ix.appsOf(i)
}

// eachHolder calls fn, in the listing order of managedDevices, for every
// listed device that holds apps, with the device as it is now and its apps
// (deviceApps); it stops at fn's first error.
func (s *Server) eachHolder(st *tenantState, v *appView, fn func(i int, d *device, apps []int32) error) error {
	var d device
	for i := 0; i < st.devices; i++ {
		if !st.listed(i) {
			continue
		}
		apps := v.deviceApps(st, i)
		if len(apps) == 0 {
			continue
		}
		s.current(st, i, &d)
		if err := fn(i, &d, apps); err != nil {
			return err
		}
	}
	return nil
}

// ChangeApps changes the inventory of each listed device: one of its apps
// is upgraded to a newer version (the newest version of a core title that
// the tenant has, else a new version, which becomes a new detectedApp with
// an id of its own unless another device upgraded to it first) and another
// app is uninstalled, so that a client sees a pair change and a pair
// disappear. A device without apps (one enrolled by Add) gets one or two of
// its platform's most widespread apps instead. Each call is a new revision
// derived from (seed, index, revision). Indexes that do not exist or are
// removed are ignored, and so is everything in a tenant without apps.
func (s *Server) ChangeApps(indices ...int) {
	if s.cfg.DetectedApps <= 0 {
		return
	}
	ix := s.appIndex()
	s.mutate(func(st *tenantState) {
		appsOf := make(map[int][]int32, len(st.appsOf)+len(indices))
		maps.Copy(appsOf, st.appsOf)
		revs := make(map[int]uint32, len(st.appRevs)+len(indices))
		maps.Copy(revs, st.appRevs)
		extra := slices.Clip(st.extraApps)
		for _, i := range indices {
			if i < 0 || i >= st.devices || !st.listed(i) {
				continue
			}
			revs[i]++
			cur, ok := appsOf[i]
			if !ok {
				cur = ix.appsOf(i)
			}
			appsOf[i] = s.changedApps(ix, &extra, i, revs[i], cur)
		}
		st.appsOf, st.appRevs, st.extraApps = appsOf, revs, extra
	})
}

// changedApps is device i's inventory after its revision rev.
func (s *Server) changedApps(ix *appIndex, extra *[]appEntry, i int, rev uint32, cur []int32) []int32 {
	os := s.osOf(i)
	r := newRNG(s.cfg.Seed, i, saltAppChange+uint64(rev))
	apps := slices.Clone(cur)
	if len(apps) == 0 {
		pop := ix.popular[os]
		if len(pop) == 0 {
			return apps
		}
		k := r.intn(len(pop))
		apps = append(apps, pop[k])
		if len(pop) > 1 {
			apps = append(apps, pop[(k+1+r.intn(len(pop)-1))%len(pop)])
		}
		slices.Sort(apps)
		return apps
	}
	k := r.intn(len(apps))
	up := s.upgrade(ix, extra, int(apps[k]))
	if slices.Contains(apps, up) {
		apps = slices.Delete(apps, k, k+1)
	} else {
		apps[k] = up
	}
	if len(apps) >= 2 {
		j := r.intn(len(apps))
		if apps[j] == up {
			j = (j + 1) % len(apps)
		}
		apps = slices.Delete(apps, j, j+1)
	}
	slices.Sort(apps)
	return apps
}

// upgrade returns the app that app a becomes when its device updates it.
func (s *Server) upgrade(ix *appIndex, extra *[]appEntry, a int) int32 {
	var e appEntry
	if a < len(ix.apps) {
		e = ix.apps[a]
	} else {
		e = (*extra)[a-len(ix.apps)]
	}
	for _, t := range coreTitles[e.os] {
		if t.name == e.name && t.versions[0].version != e.version {
			if n := ix.find(appKey{e.name, t.versions[0].version, e.os}); n >= 0 {
				return int32(n)
			}
		}
	}
	e.version = bumpVersion(e.version)
	if n := ix.find(e.key()); n >= 0 {
		return int32(n)
	}
	for k := range *extra {
		if (*extra)[k].key() == e.key() {
			return int32(len(ix.apps) + k)
		}
	}
	if e.size > 0 {
		e.size += 4096 * int64(1+len(e.version)%7)
	}
	*extra = append(*extra, e)
	return int32(len(ix.apps) + len(*extra) - 1)
}

// bumpVersion is the next patch of a version: its last number plus one.
func bumpVersion(v string) string {
	k := strings.LastIndexByte(v, '.')
	if n, err := strconv.Atoi(v[k+1:]); err == nil {
		return v[:k+1] + strconv.Itoa(n+1)
	}
	return v + ".1"
}
