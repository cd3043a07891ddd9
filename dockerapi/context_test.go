package dockerapi

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func tarOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body))}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return b.Bytes()
}

func TestExtractContext(t *testing.T) {
	dir := t.TempDir()
	data := tarOf(t,
		entry{name: "Dockerfile", body: "FROM scratch\n", typ: tar.TypeReg},
		entry{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "bin/server", body: "ELF", typ: tar.TypeReg, mode: 0o755},
		entry{name: "link", link: "bin/server", typ: tar.TypeSymlink},
		entry{name: "hard", link: "bin/server", typ: tar.TypeLink},
	)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	for name, body := range map[string][]byte{"plain": data, "gzip": gz.Bytes()} {
		d := filepath.Join(dir, name)
		os.Mkdir(d, 0o755)
		isTar, err := extractContext(bytes.NewReader(body), d)
		if err != nil || !isTar {
			t.Fatalf("%s: extractContext = %v, %v", name, isTar, err)
		}
		if b, _ := os.ReadFile(filepath.Join(d, "Dockerfile")); string(b) != "FROM scratch\n" {
			t.Errorf("%s: Dockerfile = %q", name, b)
		}
		if fi, err := os.Stat(filepath.Join(d, "bin/server")); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: bin/server: %v %v", name, fi, err)
		}
		if l, _ := os.Readlink(filepath.Join(d, "link")); l != "bin/server" {
			t.Errorf("%s: link -> %q", name, l)
		}
		if b, _ := os.ReadFile(filepath.Join(d, "hard")); string(b) != "ELF" {
			t.Errorf("%s: hard link holds %q", name, b)
		}
	}
}

// TestExtractContextStaysInside: no entry lands outside the directory,
// through "..", absolute names or a symlink of the context itself.
func TestExtractContextStaysInside(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "ctx")
	os.Mkdir(dir, 0o755)
	outside := filepath.Join(root, "outside")
	os.Mkdir(outside, 0o755)
	data := tarOf(t,
		entry{name: "../escape", body: "x", typ: tar.TypeReg},
		entry{name: "/abs", body: "x", typ: tar.TypeReg},
		entry{name: "out", link: outside, typ: tar.TypeSymlink},
		entry{name: "out/through-link", body: "x", typ: tar.TypeReg},
		entry{name: "hl", link: "../outside/x", typ: tar.TypeLink},
	)
	extractContext(bytes.NewReader(data), dir)
	entries, _ := os.ReadDir(outside)
	if len(entries) != 0 {
		t.Errorf("files written outside the context: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(root, "escape")); err == nil {
		t.Error("../escape was written outside the context")
	}
	if _, err := os.Stat(filepath.Join(dir, "abs")); err != nil {
		t.Errorf("/abs should land inside the context: %v", err)
	}
}

func TestExtractContextPlainDockerfile(t *testing.T) {
	dir := t.TempDir()
	isTar, err := extractContext(strings.NewReader("FROM busybox\nRUN true\n"), dir)
	if err != nil || isTar {
		t.Fatalf("extractContext = %v, %v", isTar, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "Dockerfile")); string(b) != "FROM busybox\nRUN true\n" {
		t.Errorf("Dockerfile = %q", b)
	}
	if _, err := extractContext(bytes.NewReader([]byte("BZh91AY&SY")), t.TempDir()); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("bzip2 context: %v", err)
	}
}
