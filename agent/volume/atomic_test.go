package volume

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// tree describes a target directory: user-visible names with what they
// link to, and the files reachable through them with content and mode.
func tree(t *testing.T, dir string) (links map[string]string, files map[string]string) {
	t.Helper()
	links, files = map[string]string{}, map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if target, err := os.Readlink(p); err == nil {
			links[e.Name()] = target
		}
	}
	filepath.Walk(filepath.Join(dir, dataDirName)+"/", func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(filepath.Join(dir, dataDirName), p)
		b, _ := os.ReadFile(p)
		files[rel] = string(b) + " " + info.Mode().Perm().String()
		return nil
	})
	return links, files
}

func timestampDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "..") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

func TestAtomicWriterLayoutAndUpdates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	w := AtomicWriter{Dir: dir}
	type step struct {
		name      string
		payload   map[string]FileProjection
		changed   bool
		wantLinks map[string]string
		wantFiles map[string]string
	}
	steps := []step{
		{
			name:    "first write",
			payload: map[string]FileProjection{"user": {Data: []byte("admin"), Mode: 0o644}, "conf/app.ini": {Data: []byte("a=1"), Mode: 0o400}},
			changed: true,
			wantLinks: map[string]string{
				"user": "..data/user", "conf": "..data/conf",
			},
			wantFiles: map[string]string{"user": "admin -rw-r--r--", "conf/app.ini": "a=1 -r--------"},
		},
		{
			name:      "same payload is a no-op",
			payload:   map[string]FileProjection{"user": {Data: []byte("admin"), Mode: 0o644}, "conf/app.ini": {Data: []byte("a=1"), Mode: 0o400}},
			changed:   false,
			wantLinks: map[string]string{"user": "..data/user", "conf": "..data/conf"},
			wantFiles: map[string]string{"user": "admin -rw-r--r--", "conf/app.ini": "a=1 -r--------"},
		},
		{
			name:      "changed content and a removed key",
			payload:   map[string]FileProjection{"user": {Data: []byte("root"), Mode: 0o644}},
			changed:   true,
			wantLinks: map[string]string{"user": "..data/user"},
			wantFiles: map[string]string{"user": "root -rw-r--r--"},
		},
		{
			name:      "a mode change alone rewrites",
			payload:   map[string]FileProjection{"user": {Data: []byte("root"), Mode: 0o600}},
			changed:   true,
			wantLinks: map[string]string{"user": "..data/user"},
			wantFiles: map[string]string{"user": "root -rw-------"},
		},
		{
			name:      "empty payload (a missing optional source)",
			payload:   map[string]FileProjection{},
			changed:   true,
			wantLinks: map[string]string{},
			wantFiles: map[string]string{},
		},
	}
	for _, s := range steps {
		changed, err := w.Write(s.payload, nil)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if changed != s.changed {
			t.Errorf("%s: changed = %v, want %v", s.name, changed, s.changed)
		}
		links, files := tree(t, dir)
		data := links[dataDirName]
		delete(links, dataDirName)
		if !strings.HasPrefix(data, "..") || data == dataDirName {
			t.Errorf("%s: ..data -> %q, want a timestamped directory", s.name, data)
		}
		if ts := timestampDirs(t, dir); len(ts) != 1 || ts[0] != data {
			t.Errorf("%s: timestamped dirs %v, want only %s", s.name, ts, data)
		}
		if !equalMaps(links, s.wantLinks) {
			t.Errorf("%s: links = %v, want %v", s.name, links, s.wantLinks)
		}
		if !equalMaps(files, s.wantFiles) {
			t.Errorf("%s: files = %v, want %v", s.name, files, s.wantFiles)
		}
	}
}

// A reader holding the old timestamped directory keeps its content while
// the new one is published: what a subPath bind mount sees.
func TestAtomicWriterSwapKeepsOldInodeForOpenReaders(t *testing.T) {
	dir := t.TempDir()
	w := AtomicWriter{Dir: dir}
	if _, err := w.Write(map[string]FileProjection{"key": {Data: []byte("v1"), Mode: 0o644}}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := w.Write(map[string]FileProjection{"key": {Data: []byte("v2"), Mode: 0o644}}, nil); err != nil {
		t.Fatal(err)
	}
	old := make([]byte, 2)
	f.Read(old)
	cur, _ := os.ReadFile(filepath.Join(dir, "key"))
	if string(old) != "v1" || string(cur) != "v2" {
		t.Errorf("open reader saw %q, path now reads %q; want v1 and v2", old, cur)
	}
}

func TestAtomicWriterRejectsBadPaths(t *testing.T) {
	w := AtomicWriter{Dir: t.TempDir()}
	for _, p := range []string{"/etc/passwd", "../escape", "a/../../b", "..hidden", ""} {
		if _, err := w.Write(map[string]FileProjection{p: {Data: []byte("x"), Mode: 0o644}}, nil); err == nil {
			t.Errorf("path %q was accepted", p)
		}
	}
}

func TestAtomicWriterSetPermsRunsBeforePublish(t *testing.T) {
	dir := t.TempDir()
	var sawData bool
	_, err := AtomicWriter{Dir: dir}.Write(map[string]FileProjection{"k": {Data: []byte("v"), Mode: 0o644}}, func(ts string) error {
		_, err := os.Stat(filepath.Join(ts, "k"))
		_, linkErr := os.Lstat(filepath.Join(dir, dataDirName))
		sawData = err == nil && os.IsNotExist(linkErr)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sawData {
		t.Error("setPerms did not run on the written, unpublished directory")
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
