package graphsim

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Detected apps are Intune's software inventory: one detectedApp per
// (name, version) found on the tenant's devices, each version of an app
// being an app of its own with its own id, and the relationship between
// apps and managed devices. Microsoft documents the resource at
// https://learn.microsoft.com/graph/api/resources/intune-devices-detectedapp
// (id, displayName, version, sizeInByte Int64, deviceCount Int32,
// publisher, platform; relationship managedDevices).
//
// Unlike devices, which are generated while a page is written, apps are a
// relationship and need an index: which devices hold which app. It is
// built on first use from Config.Seed alone, as two compressed adjacency
// lists of int32 (app -> devices, device -> apps), so that a tenant of
// 10,000 devices holding 150 apps each costs about 10 MB. It covers the
// devices of Config.Devices; devices enrolled later (Add) have no inventory
// until ChangeApps gives them some, as a freshly enrolled device has none
// until its first inventory cycle.
//
// The spread follows what corporate tenants look like: on each platform a
// few titles (browsers, Office, the Intune agents, runtimes, a security
// agent) are on nearly every device, the popular ones in several versions
// (a device holds one of them); then common apps, then a long tail of rare
// apps and stray versions, many of them on a single device. The tail's
// device counts follow a Zipf law whose scale is solved so that Windows
// devices hold AppsPerDevice apps on average (macOS 45% of it, iOS a fifth,
// Android a sixth), unless the catalogue cannot: a small catalogue cannot
// fill many devices (the mean falls short), and a large one on few devices
// still gives every app a device (the mean rises).

// Defaults for detected apps.
const (
	// DefaultAppsPerDevice is Config.AppsPerDevice when DetectedApps > 0:
	// a managed Windows PC reports 100 to 200 entries in Intune's
	// Discovered apps.
	DefaultAppsPerDevice = 150
	// DefaultAppPageSize is Config.AppPageSize. Microsoft documents no
	// page size for detectedApps or its relationships; 1000 is what
	// Intune's managedDevices uses.
	DefaultAppPageSize = 1000
)

// appEntry is one detectedApp: a (name, version) of one platform.
type appEntry struct {
	name, version, publisher string
	size                     int64
	os                       osKind // the operating system of the devices that hold it
}

// appKey identifies an app by what Intune keys it on.
type appKey struct {
	name, version string
	os            osKind
}

func (e *appEntry) key() appKey { return appKey{e.name, e.version, e.os} }

// appIndex is the base catalogue of the tenant and who holds what. It is
// immutable once built; mutations are layered on it (appmutations.go).
type appIndex struct {
	apps   []appEntry
	appOff []int32 // apps[a]'s devices are appDev[appOff[a]:appOff[a+1]], ascending
	appDev []int32
	devOff []int32 // device i's apps are devApp[devOff[i]:devOff[i+1]], ascending (i < Config.Devices)
	devApp []int32
	// popular are, per operating system, the most widespread apps, which
	// ChangeApps installs on a device that has none.
	popular [osCount][]int32

	lookupOnce sync.Once
	byKey      map[appKey]int32 // built for ChangeApps only
}

func (x *appIndex) devicesOf(a int) []int32 {
	if a >= len(x.apps) {
		return nil
	}
	return x.appDev[x.appOff[a]:x.appOff[a+1]]
}

func (x *appIndex) appsOf(i int) []int32 {
	if i < 0 || i >= len(x.devOff)-1 {
		return nil
	}
	return x.devApp[x.devOff[i]:x.devOff[i+1]]
}

// find returns the base app with key k, or -1.
func (x *appIndex) find(k appKey) int {
	x.lookupOnce.Do(func() {
		x.byKey = make(map[appKey]int32, len(x.apps))
		for a := range x.apps {
			x.byKey[x.apps[a].key()] = int32(a)
		}
	})
	if a, ok := x.byKey[k]; ok {
		return int(a)
	}
	return -1
}

// appIndex returns the base index, building it on first use.
func (s *Server) appIndex() *appIndex {
	s.appsOnce.Do(func() { s.apps = buildAppIndex(s.cfg, s.osOf) })
	return s.apps
}

// appTargets are the mean apps per device of each platform.
func appTargets(perDevice int) [osCount]int {
	var t [osCount]int
	t[osWindows] = perDevice
	t[osMacOS] = max(1, perDevice*45/100)
	t[osIOS] = max(1, perDevice/5)
	t[osAndroid] = max(1, perDevice/6)
	return t
}

// allocateApps shares the catalogue between the platforms: each first gets
// enough entries for its devices' mean (1.2 times it, less when the
// catalogue is too small for all), the rest goes in proportion to the
// apps its devices hold in all.
func allocateApps(total int, devices, target [osCount]int) [osCount]int {
	var want, pairs [osCount]int
	sumWant, sumPairs := 0, 0
	for os := range osCount {
		if devices[os] == 0 {
			continue
		}
		want[os] = (target[os]*12 + 9) / 10
		pairs[os] = devices[os] * target[os]
		sumWant += want[os]
		sumPairs += pairs[os]
	}
	var out [osCount]int
	if sumWant == 0 {
		return out
	}
	given := 0
	for os := range osCount {
		if sumWant <= total {
			out[os] = want[os]
		} else {
			out[os] = total * want[os] / sumWant
		}
		given += out[os]
	}
	rest := total - given
	shared := 0
	for os := range osCount {
		if pairs[os] > 0 {
			k := int(int64(rest) * int64(pairs[os]) / int64(sumPairs))
			out[os] += k
			shared += k
		}
	}
	// Rounding leftovers go to the platform with the most pairs.
	top := osWindows
	for os := range osCount {
		if pairs[os] > pairs[top] {
			top = os
		}
	}
	if pairs[top] > 0 {
		out[top] += rest - shared
	}
	return out
}

// appBuilder accumulates the catalogue while it is generated.
type appBuilder struct {
	seed    int64
	entries []appEntry
	off     []int32 // entry k's devices are devs[off[k]:off[k+1]]
	devs    []int32
	seen    map[appKey]struct{}
	stamp   []uint32 // device marks of the current pick
	mark    uint32
	picked  []int32 // scratch: local indexes of a pick
	weights []float64
}

// tailExponent is the Zipf exponent of the tail's device counts: steep
// enough that a tenant with more apps than its devices hold mostly has
// apps on one or two devices, flat enough that common apps stay common.
const tailExponent = 1.3

// coreShare bounds the core titles to this share of a platform's mean, so
// that a small AppsPerDevice still leaves room for the others.
const coreShare = 0.6

func buildAppIndex(cfg Config, osOf func(int) osKind) *appIndex {
	if cfg.DetectedApps <= 0 || cfg.Devices <= 0 {
		return &appIndex{appOff: []int32{0}}
	}
	n := cfg.Devices
	var devs [osCount][]int32
	for i := 0; i < n; i++ {
		os := osOf(i)
		devs[os] = append(devs[os], int32(i))
	}
	var counts [osCount]int
	for os := range osCount {
		counts[os] = len(devs[os])
	}
	target := appTargets(cfg.AppsPerDevice)
	alloc := allocateApps(cfg.DetectedApps, counts, target)
	b := &appBuilder{seed: cfg.Seed, seen: make(map[appKey]struct{}, cfg.DetectedApps), off: []int32{0}}
	for os := range osCount {
		b.platform(os, devs[os], alloc[os], target[os])
	}
	return b.finish(n)
}

// platform generates the apps of one operating system: want entries over
// its devices, holding target apps each on average.
func (b *appBuilder) platform(os osKind, devs []int32, want, target int) {
	n := len(devs)
	if n == 0 || want <= 0 {
		return
	}
	if cap(b.stamp) < n {
		b.stamp = make([]uint32, n)
		b.mark = 0
	}
	b.stamp = b.stamp[:n]
	// Each device's appetite scales its chance to hold a tail app: kiosks
	// hold few, developers' PCs many.
	b.weights = b.weights[:0]
	for _, i := range devs {
		r := newRNG(b.seed, int(i), saltAppetite)
		u := float64(r.next()>>11) / (1 << 53)
		b.weights = append(b.weights, 0.2+0.8*u*u)
	}
	r := newRNG(b.seed, int(os), saltApps)
	used, pairs := 0, 0
	presence := 0 // per mille, summed over the core titles taken
	for _, t := range coreTitles[os] {
		if used+1 > want || float64(presence+t.presence) > coreShare*1000*float64(target) {
			break
		}
		presence += t.presence
		c := min(max((t.presence*n+500)/1000, 1), n)
		vs := t.versions
		if len(vs) > c {
			vs = vs[:c]
		}
		if len(vs) > want-used {
			vs = vs[:want-used]
		}
		chosen := b.pick(&r, n, c, nil)
		// The pick's order is random: consecutive runs make the versions.
		shuffle(&r, chosen)
		weight := 0
		for _, v := range vs {
			weight += v.weight
		}
		at := 0
		for k, v := range vs {
			m := max(c*v.weight/weight, 1)
			if k == len(vs)-1 {
				m = c - at
			}
			m = min(m, c-at-(len(vs)-1-k)) // leave one device for each later version
			b.add(appEntry{name: t.name, version: v.version, publisher: t.publisher, size: t.size, os: os}, devs, chosen[at:at+m])
			at += m
		}
		used += len(vs)
		pairs += c
	}
	rest := want - used
	if rest <= 0 {
		return
	}
	capacity := max(n*85/100, 1)
	budget := n*target - pairs
	budget = min(max(budget, rest), rest*capacity)
	for _, c := range tailCounts(&r, rest, budget, capacity) {
		e := b.tailEntry(&r, os)
		b.add(e, devs, b.pick(&r, n, c, b.weights))
	}
}

// tailCounts shares budget device slots between n tail apps, each on 1 to
// capacity devices. When the catalogue is roomy (the budget needs less
// than half of what n apps can hold), up to half of the apps are rare, on
// one device (70%), two (20%) or three (10%), as the unique versions and
// one-off installs of real tenants are; the others follow a Zipf law.
// When it is tight, all follow the Zipf law, whose floor of one device
// makes them rare anyway if the budget is barely n.
func tailCounts(r *rng, n, budget, capacity int) []int {
	room := float64(budget) / (float64(n) * float64(capacity))
	rare := int(0.5 * max(0, 1-2*room) * float64(n))
	out := make([]int, 0, n)
	rarePairs := 0
	for range rare {
		c := 1
		switch k := r.intn(10); {
		case k >= 9:
			c = 3
		case k >= 7:
			c = 2
		}
		c = min(c, capacity)
		out = append(out, c)
		rarePairs += c
	}
	if budget-rarePairs < n-rare {
		for k := range out {
			out[k] = 1
		}
		rarePairs = rare
	}
	if n > rare {
		out = append(out, zipfCounts(n-rare, budget-rarePairs, capacity, tailExponent)...)
	}
	// Interleave the rare with the others so that the order of generation
	// says nothing about popularity.
	shuffle(r, out)
	return out
}

// add appends an app held by the devices at the local indexes chosen.
func (b *appBuilder) add(e appEntry, devs []int32, chosen []int32) {
	b.seen[e.key()] = struct{}{}
	b.entries = append(b.entries, e)
	for _, k := range chosen {
		b.devs = append(b.devs, devs[k])
	}
	if len(b.devs) > math.MaxInt32 {
		panic("graphsim: more than 2^31 device-app pairs")
	}
	b.off = append(b.off, int32(len(b.devs)))
}

// pick chooses c distinct local indexes out of n, uniformly or, with
// weights, each in proportion to its weight (by rejection, which stays
// cheap because weights lie within a factor of five of each other). When c
// is more than half of n it picks the n-c left out instead.
func (b *appBuilder) pick(r *rng, n, c int, weights []float64) []int32 {
	b.mark++
	if b.mark == 0 {
		clear(b.stamp)
		b.mark = 1
	}
	out := b.picked[:0]
	exclude := 2*c > n
	k := c
	if exclude {
		k = n - c
	}
	for got := 0; got < k; {
		i := r.intn(n)
		if b.stamp[i] == b.mark {
			continue
		}
		if weights != nil {
			u := float64(r.next()>>11) / (1 << 53)
			w := weights[i]
			if exclude {
				w = 0.2 / w // the heavier a device, the less it is left out
			}
			if u >= w {
				continue
			}
		}
		b.stamp[i] = b.mark
		got++
		if !exclude {
			out = append(out, int32(i))
		}
	}
	if exclude {
		for i := 0; i < n; i++ {
			if b.stamp[i] != b.mark {
				out = append(out, int32(i))
			}
		}
	}
	b.picked = out
	return out
}

// zipfCounts returns n device counts in [1, capacity] summing to total
// (which must lie in [n, n*capacity]): round(lambda * (j+1)^-s), clamped,
// with lambda solved by bisection and the rounding drift spread over the
// largest counts.
func zipfCounts(n, total, capacity int, s float64) []int {
	w := make([]float64, n)
	for j := range w {
		w[j] = math.Pow(float64(j+1), -s)
	}
	sum := func(lambda float64) int {
		t := 0
		for _, x := range w {
			t += min(max(int(lambda*x+0.5), 1), capacity)
		}
		return t
	}
	lo, hi := 0.0, float64(capacity)*math.Pow(float64(n), s)+1
	for range 64 {
		mid := (lo + hi) / 2
		if sum(mid) <= total {
			lo = mid
		} else {
			hi = mid
		}
	}
	out := make([]int, n)
	got := 0
	for j, x := range w {
		out[j] = min(max(int(lo*x+0.5), 1), capacity)
		got += out[j]
	}
	for got < total {
		moved := false
		for j := range out {
			if got == total {
				break
			}
			if out[j] < capacity {
				out[j]++
				got++
				moved = true
			}
		}
		if !moved {
			break
		}
	}
	return out
}

// tailEntry makes a new app of the tail: a stray version of a core title,
// or a generated app, never a (name, version) the catalogue already has.
func (b *appBuilder) tailEntry(r *rng, os osKind) appEntry {
	for {
		e := appEntry{os: os}
		if titles := coreTitles[os]; len(titles) > 0 && r.chance(15) {
			t := pick(r, titles)
			e.name, e.publisher, e.size = t.name, t.publisher, t.size
			e.version = strayVersion(r, t.versions[0].version)
		} else {
			e.publisher = pick(r, appPublishers)
			name := pick(r, appNamePrefixes) + pick(r, appNameNouns) + pick(r, appNameSuffixes[os])
			if brand := brandOf(e.publisher); brand != "" && !r.chance(30) {
				name = brand + " " + name
			}
			e.name = name
			e.version = randomVersion(r, os)
			e.size = randomSize(r, os)
		}
		if _, dup := b.seen[e.key()]; !dup {
			return e
		}
	}
}

// brandOf is the first word of a publisher, which vendors put in front of
// their products' names.
func brandOf(publisher string) string {
	w, _, _ := strings.Cut(publisher, " ")
	return strings.TrimRight(w, ",.")
}

// strayVersion is an odd version of a title: an older build or a patch
// that only a few devices run.
func strayVersion(r *rng, newest string) string {
	parts := strings.Split(newest, ".")
	last := len(parts) - 1
	if n, err := strconv.Atoi(parts[last]); err == nil {
		parts[last] = strconv.Itoa((n + 1 + r.intn(400)) % 1000)
	} else {
		parts = append(parts, strconv.Itoa(r.intn(1000)))
	}
	if len(parts) > 1 && r.chance(50) {
		if n, err := strconv.Atoi(parts[0]); err == nil && n > 1 {
			parts[0] = strconv.Itoa(n - 1 - r.intn(min(n-1, 5)))
		}
	}
	return strings.Join(parts, ".")
}

func randomVersion(r *rng, os osKind) string {
	b := strconv.AppendInt(nil, int64(1+r.intn(30)), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(r.intn(20)), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(r.intn(10000)), 10)
	if os == osWindows && !r.chance(30) || os == osAndroid && r.chance(40) {
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(r.intn(1000)), 10)
	}
	return string(b)
}

// randomSize is log-uniform: desktop apps from 50 kB to 6 GB (some above
// 2^31, which an Int32 cannot hold), mobile apps from 5 MB to 1.5 GB. Some
// desktop apps report 0, as Windows installers that register no size do.
func randomSize(r *rng, os osKind) int64 {
	lo, hi := 5e4, 6e9
	if os == osIOS || os == osAndroid {
		lo, hi = 5e6, 1.5e9
	} else if r.chance(10) {
		return 0
	}
	u := float64(r.next()>>11) / (1 << 53)
	return int64(math.Exp(math.Log(lo) + u*(math.Log(hi)-math.Log(lo))))
}

// finish shuffles the catalogue into its listing order and builds both
// adjacency lists.
func (b *appBuilder) finish(devices int) *appIndex {
	m := len(b.entries)
	order := make([]int32, m)
	for k := range order {
		order[k] = int32(k)
	}
	r := newRNG(b.seed, 0, saltAppOrder)
	shuffle(&r, order)
	x := &appIndex{
		apps:   make([]appEntry, m),
		appOff: make([]int32, m+1),
		appDev: make([]int32, len(b.devs)),
		devOff: make([]int32, devices+1),
		devApp: make([]int32, len(b.devs)),
	}
	at := int32(0)
	for a, k := range order {
		x.apps[a] = b.entries[k]
		seg := x.appDev[at : at+b.off[k+1]-b.off[k]]
		copy(seg, b.devs[b.off[k]:b.off[k+1]])
		slices.Sort(seg)
		at += int32(len(seg))
		x.appOff[a+1] = at
	}
	for _, i := range x.appDev {
		x.devOff[i+1]++
	}
	for i := 0; i < devices; i++ {
		x.devOff[i+1] += x.devOff[i]
	}
	fill := slices.Clone(x.devOff[:devices])
	for a := 0; a < m; a++ {
		for _, i := range x.devicesOf(a) {
			x.devApp[fill[i]] = int32(a)
			fill[i]++
		}
	}
	// The most widespread apps of each platform, for ChangeApps.
	for os := range osCount {
		var top []int32
		for a := range x.apps {
			if x.apps[a].os == os {
				top = append(top, int32(a))
			}
		}
		slices.SortStableFunc(top, func(p, q int32) int {
			return len(x.devicesOf(int(q))) - len(x.devicesOf(int(p)))
		})
		x.popular[os] = top[:min(len(top), 8)]
	}
	return x
}

// App ids look like Intune's, 64 hex digits, and encode the app's index
// the way device ids do, so that a skip token or a path finds its app
// without a map: the first 16 digits are an invertible mix of the index,
// the rest derived from them.

var (
	smInv1 = modInverse(0xbf58476d1ce4e5b9)
	smInv2 = modInverse(0x94d049bb133111eb)
)

// modInverse returns the inverse of an odd c modulo 2^64 (Newton's
// iteration doubles the correct bits each step).
func modInverse(c uint64) uint64 {
	x := c
	for range 6 {
		x *= 2 - c*x
	}
	return x
}

// unsplitmix64 inverts splitmix64.
func unsplitmix64(z uint64) uint64 {
	z ^= z>>31 ^ z>>62
	z *= smInv2
	z ^= z>>27 ^ z>>54
	z *= smInv1
	z ^= z>>30 ^ z>>60
	return z - 0x9e3779b97f4a7c15
}

func appendAppID(b []byte, seed int64, a int) []byte {
	key := splitmix64(uint64(seed) ^ saltAppID)
	w := splitmix64(uint64(a) + key)
	b = appendHex(b, w, 16, false)
	for k := uint64(1); k <= 3; k++ {
		b = appendHex(b, splitmix64(w^(saltAppID+k)), 16, false)
	}
	return b
}

// appIndexFromID inverts appendAppID: the index an app id encodes, if it
// is one this tenant would have issued for an index below n.
func appIndexFromID(seed int64, id string, n int) (int, bool) {
	if len(id) != 64 {
		return 0, false
	}
	w, err := strconv.ParseUint(id[:16], 16, 64)
	if err != nil {
		return 0, false
	}
	a := unsplitmix64(w) - splitmix64(uint64(seed)^saltAppID)
	if a >= uint64(n) {
		return 0, false
	}
	var buf [64]byte
	return int(a), strings.EqualFold(string(appendAppID(buf[:0], seed, int(a))), id)
}
