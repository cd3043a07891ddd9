// Package volume holds the node agent's volume mechanics, kubelet's way:
// the atomic writer that projects ConfigMaps, Secrets, downward API fields
// and tokens into a directory, the payloads it writes, ownership for
// fsGroup, hostPath type checks, tmpfs mounts and the per-container mount
// plan (subPath, readOnly, propagation). Getting the objects from the API
// is the agent's business; nothing in here talks to it.
package volume

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// FileProjection is one file of a payload.
type FileProjection struct {
	Data   []byte
	Mode   int32
	FsUser *int64 // owner of the file; nil: unchanged (root)
}

// Names inside a target directory, as kubelet lays them out.
const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
)

// maxPathLength and maxFileNameLength bound payload paths.
const (
	maxPathLength     = 4096
	maxFileNameLength = 255
)

// AtomicWriter writes payloads into Dir so that a reader never sees a mix
// of old and new files: the files live in a timestamped directory
// (..2006_01_02_15_04_05.NNNN), "..data" links to it, and every
// user-visible top-level name links through ..data; an update writes a new
// timestamped directory and renames a new ..data link over the old one.
type AtomicWriter struct {
	Dir string
}

// Write projects payload into the directory; setPerms (optional) runs on
// the new timestamped directory before it is published. It reports
// whether anything changed.
func (w AtomicWriter) Write(payload map[string]FileProjection, setPerms func(dir string) error) (bool, error) {
	clean := make(map[string]FileProjection, len(payload))
	for p, fp := range payload {
		if err := validatePath(p); err != nil {
			return false, err
		}
		clean[filepath.Clean(p)] = fp
	}
	if err := os.MkdirAll(w.Dir, 0o755); err != nil {
		return false, fmt.Errorf("create %s: %w", w.Dir, err)
	}
	dataDir := filepath.Join(w.Dir, dataDirName)
	oldTs, err := os.Readlink(dataDir)
	if err != nil && !os.IsNotExist(err) {
		return false, fmt.Errorf("read %s: %w", dataDir, err)
	}
	oldTsDir := ""
	if oldTs != "" {
		oldTsDir = filepath.Join(w.Dir, oldTs)
	}
	oldPaths, err := w.pathsIn(oldTsDir)
	if err != nil {
		return false, err
	}
	removed := map[string]bool{}
	for p := range oldPaths {
		if _, keep := clean[p]; !keep {
			removed[p] = true
		}
	}
	if oldTsDir != "" && len(removed) == 0 && !w.differs(clean, oldTsDir) && w.linksComplete(clean) {
		return false, nil
	}

	tsDir, err := os.MkdirTemp(w.Dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, fmt.Errorf("create timestamped directory in %s: %w", w.Dir, err)
	}
	// 0755 lets group and others walk the tree whatever the umask.
	if err := os.Chmod(tsDir, 0o755); err != nil {
		return false, err
	}
	fail := func(err error) (bool, error) {
		os.RemoveAll(tsDir)
		return false, err
	}
	for p, fp := range clean {
		full := filepath.Join(tsDir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fail(err)
		}
		mode := os.FileMode(fp.Mode)
		if err := os.WriteFile(full, fp.Data, mode); err != nil {
			return fail(fmt.Errorf("write %s: %w", full, err))
		}
		if err := os.Chmod(full, mode); err != nil {
			return fail(err)
		}
		if fp.FsUser != nil {
			if err := os.Chown(full, int(*fp.FsUser), -1); err != nil {
				return fail(err)
			}
		}
	}
	if setPerms != nil {
		if err := setPerms(tsDir); err != nil {
			return fail(fmt.Errorf("set permissions of %s: %w", tsDir, err))
		}
	}
	tmpLink := filepath.Join(w.Dir, newDataDirName)
	os.Remove(tmpLink)
	if err := os.Symlink(filepath.Base(tsDir), tmpLink); err != nil {
		return fail(fmt.Errorf("link %s: %w", tmpLink, err))
	}
	if err := os.Rename(tmpLink, dataDir); err != nil {
		os.Remove(tmpLink)
		return fail(fmt.Errorf("publish %s: %w", dataDir, err))
	}
	if err := w.linkUserVisible(clean); err != nil {
		return true, err
	}
	if err := w.removeUserVisible(clean, removed); err != nil {
		return true, err
	}
	if oldTsDir != "" {
		if err := os.RemoveAll(oldTsDir); err != nil {
			return true, fmt.Errorf("remove old data %s: %w", oldTsDir, err)
		}
	}
	return true, nil
}

// validatePath is kubelet's: relative, no "..", no leading "..", bounded.
func validatePath(p string) error {
	switch {
	case len(p) > maxPathLength:
		return fmt.Errorf("invalid path: must be less than or equal to %d characters", maxPathLength)
	case filepath.IsAbs(p):
		return fmt.Errorf("invalid path: must be relative path: %s", p)
	case p == "":
		return errors.New("invalid path: must not be empty")
	case strings.HasPrefix(p, ".."):
		return fmt.Errorf("invalid path: must not start with '..': %s", p)
	}
	for _, seg := range strings.Split(p, string(filepath.Separator)) {
		if seg == ".." {
			return fmt.Errorf("invalid path: must not contain '..': %s", p)
		}
		if len(seg) > maxFileNameLength {
			return fmt.Errorf("invalid path: must not have a segment longer than %d characters", maxFileNameLength)
		}
	}
	return nil
}

// pathsIn lists the files under a timestamped directory.
func (w AtomicWriter) pathsIn(dir string) (map[string]bool, error) {
	out := map[string]bool{}
	if dir == "" {
		return out, nil
	}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if info.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = true
		return nil
	})
	return out, err
}

// differs reports whether any file's content or mode differs from payload.
func (w AtomicWriter) differs(payload map[string]FileProjection, tsDir string) bool {
	for p, fp := range payload {
		full := filepath.Join(tsDir, p)
		fi, err := os.Lstat(full)
		if err != nil || fi.Mode().Perm() != os.FileMode(fp.Mode).Perm() {
			return true
		}
		cur, err := os.ReadFile(full)
		if err != nil || !bytes.Equal(cur, fp.Data) {
			return true
		}
	}
	return false
}

// topLevel is the first path segment of every payload path.
func topLevel(payload map[string]FileProjection) map[string]bool {
	out := map[string]bool{}
	for p := range payload {
		out[strings.SplitN(p, string(filepath.Separator), 2)[0]] = true
	}
	return out
}

func (w AtomicWriter) linksComplete(payload map[string]FileProjection) bool {
	for name := range topLevel(payload) {
		if _, err := os.Lstat(filepath.Join(w.Dir, name)); err != nil {
			return false
		}
	}
	return true
}

// linkUserVisible makes name -> ..data/name for each top-level name.
func (w AtomicWriter) linkUserVisible(payload map[string]FileProjection) error {
	for name := range topLevel(payload) {
		link := filepath.Join(w.Dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(dataDirName, name), link); err != nil {
			return fmt.Errorf("link %s: %w", link, err)
		}
	}
	return nil
}

// removeUserVisible drops the links of top-level names no longer in the
// payload.
func (w AtomicWriter) removeUserVisible(payload map[string]FileProjection, removed map[string]bool) error {
	keep := topLevel(payload)
	var gone []string
	for p := range removed {
		top := strings.SplitN(p, string(filepath.Separator), 2)[0]
		if !keep[top] {
			gone = append(gone, top)
		}
	}
	sort.Strings(gone)
	for _, name := range gone {
		if err := os.Remove(filepath.Join(w.Dir, name)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	return nil
}
