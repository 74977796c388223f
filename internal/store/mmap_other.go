//go:build !unix

package store

import "os"

func mapFile(f *os.File) ([]byte, func(), error) {
	data, err := readAll(f)
	return data, func() {}, err
}
