//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package intune

import (
	"syscall"
	"unsafe"
)

// offHeapEntries returns an empty slice with room for n entries in memory
// of its own, mapped from the system rather than taken from the Go heap,
// and the function that gives that memory back (once; no entry may be
// read after it). The Go collector lets the heap grow to about twice what
// it holds before it runs again (GOGC=100): the state of a 1,000,000-device
// tenant, 36 MB that hold no pointer, would cost 72 MB there, 36 MB here.
// Pages the system has not handed out cost nothing until written. When the
// system refuses, the entries are taken from the heap.
func offHeapEntries(n int) ([]deviceEntry, func()) {
	size := n * int(unsafe.Sizeof(deviceEntry{}))
	if n <= 0 {
		return nil, func() {}
	}
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]deviceEntry, 0, n), func() {}
	}
	freed := false
	return unsafe.Slice((*deviceEntry)(unsafe.Pointer(&mem[0])), n)[:0], func() {
		if !freed {
			freed = true
			_ = syscall.Munmap(mem)
		}
	}
}
