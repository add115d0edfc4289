//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package intune

// offHeapEntries returns an empty slice with room for n entries. Where the
// system has no anonymous mmap at hand, they are taken from the Go heap;
// see offheap_mmap.go.
func offHeapEntries(n int) ([]deviceEntry, func()) {
	return make([]deviceEntry, 0, max(n, 0)), func() {}
}
