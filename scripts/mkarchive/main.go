// Command mkarchive packs a folder into a .tar.gz or .zip whose bytes
// depend only on the files' names, contents and executable bits, for
// scripts/release.sh: entries sorted by name, owned by root (0/0), dated
// SOURCE_DATE_EPOCH, modes 0755 (folders, executables) or 0644, gzip
// without a name or time. Written in Go rather than with tar and zip so
// that a release needs no particular tar, no zip, no umask and no time zone.
//
//	go run ./scripts/mkarchive OUT.tar.gz|OUT.zip DIR
//
// Every entry's name starts with DIR's base name: the archive holds one
// folder.
package main

import (
	"archive/tar"
	"archive/zip"
	"compress/flate"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type entry struct {
	name string // slash-separated, under the top folder; folders end in /
	src  string // the file to copy; "" for a folder
	mode int64
	size int64
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: mkarchive OUT.tar.gz|OUT.zip DIR (SOURCE_DATE_EPOCH dates the entries)")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Getenv("SOURCE_DATE_EPOCH")); err != nil {
		fmt.Fprintln(os.Stderr, "mkarchive:", err)
		os.Exit(1)
	}
}

func run(out, dir, epoch string) error {
	secs, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970", epoch)
	}
	mtime := time.Unix(secs, 0).UTC()
	entries, err := list(dir)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	switch {
	case strings.HasSuffix(out, ".tar.gz"):
		err = writeTarGz(f, entries, mtime)
	case strings.HasSuffix(out, ".zip"):
		err = writeZip(f, entries, mtime)
	default:
		err = fmt.Errorf("%s: want .tar.gz or .zip", out)
	}
	if err != nil {
		os.Remove(out)
		return err
	}
	return f.Close()
}

// list walks dir in lexical order (WalkDir's), so the order is fixed.
func list(dir string) ([]entry, error) {
	top := filepath.Base(filepath.Clean(dir))
	var out []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := path.Join(top, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			out = append(out, entry{name: name + "/", mode: 0o755})
		case info.Mode().IsRegular():
			mode := int64(0o644)
			if info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			out = append(out, entry{name: name, src: p, mode: mode, size: info.Size()})
		default:
			return fmt.Errorf("%s: only folders and regular files go into a release archive", p)
		}
		return nil
	})
	return out, err
}

func writeTarGz(w io.Writer, entries []entry, mtime time.Time) error {
	// A zero gzip header: no file name, MTIME 0.
	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		// The format is left to tar.Writer: USTAR, or PAX for what USTAR
		// cannot hold (a long name), the same for the same entries.
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: mtime, Uname: "root", Gname: "root"}
		if e.src == "" {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, e.size
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if err := copyFile(tw, e.src); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func writeZip(w io.Writer, entries []entry, mtime time.Time) error {
	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestCompression)
	})
	for _, e := range entries {
		// Modified in UTC: zip's MS-DOS time fields are local time.
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: mtime}
		h.SetMode(fs.FileMode(e.mode))
		if e.src == "" {
			h.Method = zip.Store
			h.SetMode(fs.ModeDir | 0o755)
		}
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if err := copyFile(fw, e.src); err != nil {
			return err
		}
	}
	return zw.Close()
}

func copyFile(w io.Writer, src string) error {
	if src == "" {
		return nil
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
