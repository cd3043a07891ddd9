package dockerapi

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// extractContext unpacks a build context (a tar, maybe gzipped) into dir.
// A body that is not an archive is taken as the Dockerfile itself (what
// `docker build - < Dockerfile` means); isTar says which it was. Entries
// can never land outside dir, not even through symlinks of the context.
func extractContext(body io.Reader, dir string) (isTar bool, err error) {
	br := bufio.NewReaderSize(body, 64<<10)
	head, _ := br.Peek(512)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return false, err
		}
		defer zr.Close()
		zbr := bufio.NewReaderSize(zr, 64<<10)
		head, _ = zbr.Peek(512)
		r = zbr
	case bytes.HasPrefix(head, []byte("BZh")), bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}), bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return false, errors.New("compressed build contexts other than gzip are not supported: send a plain or gzipped tar")
	}
	if !looksLikeTar(head) {
		f, err := os.OpenFile(filepath.Join(dir, "Dockerfile"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return false, err
		}
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return false, err
	}
	tr := tar.NewReader(r)
	type dirTime struct {
		path string
		t    time.Time
	}
	var dirs []dirTime
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return true, err
		}
		if err := extractEntry(dir, h, tr); err != nil {
			return true, fmt.Errorf("%s: %w", h.Name, err)
		}
		if h.Typeflag == tar.TypeDir {
			if p, err := securejoin.SecureJoin(dir, h.Name); err == nil {
				dirs = append(dirs, dirTime{p, h.ModTime})
			}
		}
	}
	for _, d := range dirs {
		os.Chtimes(d.path, d.t, d.t)
	}
	return true, nil
}

// looksLikeTar checks the ustar/gnu magic of the first header (or an
// empty archive: a zero block).
func looksLikeTar(head []byte) bool {
	if len(head) < 512 {
		return false
	}
	if bytes.Equal(head[257:262], []byte("ustar")) {
		return true
	}
	return bytes.Count(head, []byte{0}) == 512
}

func extractEntry(root string, h *tar.Header, r io.Reader) error {
	name := filepath.Clean("/" + h.Name)
	if name == "/" {
		return nil
	}
	// The parent is resolved inside root (following the context's own
	// symlinks only within it); the entry itself is never followed.
	parent, err := securejoin.SecureJoin(root, filepath.Dir(name))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	path := filepath.Join(parent, filepath.Base(name))
	mode := h.FileInfo().Mode()
	switch h.Typeflag {
	case tar.TypeDir:
		if fi, err := os.Lstat(path); err == nil && !fi.IsDir() {
			os.Remove(path)
		}
		if err := os.Mkdir(path, 0o755); err != nil && !os.IsExist(err) {
			return err
		}
	case tar.TypeReg, tar.TypeRegA:
		os.Remove(path)
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case tar.TypeSymlink:
		os.Remove(path)
		if err := os.Symlink(h.Linkname, path); err != nil {
			return err
		}
	case tar.TypeLink:
		target, err := securejoin.SecureJoin(root, filepath.Clean("/"+h.Linkname))
		if err != nil {
			return err
		}
		if !strings.HasPrefix(target, root) {
			return fmt.Errorf("hard link %q leaves the context", h.Linkname)
		}
		os.Remove(path)
		return os.Link(target, path)
	default:
		return nil // devices, fifos: not part of a build context
	}
	if h.Typeflag != tar.TypeSymlink {
		if err := os.Chmod(path, mode.Perm()|mode&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
			return err
		}
	}
	if os.Geteuid() == 0 {
		os.Lchown(path, h.Uid, h.Gid)
	}
	if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA {
		os.Chtimes(path, h.ModTime, h.ModTime)
	}
	return nil
}
