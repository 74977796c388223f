//go:build unix

package store

import (
	"os"
	"syscall"
)

// mapFile maps the index read-only: get scans it once, and copying a
// large index into the heap would cost more than the scan.
func mapFile(f *os.File) (data []byte, release func(), err error) {
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() < 256<<10 || st.Size() > 1<<30 { // small: a read is cheaper than a mapping
		data, err := readAll(f)
		return data, func() {}, err
	}
	data, err = syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		data, err := readAll(f)
		return data, func() {}, err
	}
	return data, func() { _ = syscall.Munmap(data) }, nil
}
