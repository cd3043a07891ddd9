// Package testimages writes small container images as OCI image archives
// (with a docker-save manifest too), so tests never pull from the internet:
// busybox from Debian's busybox-static, and any static binary as an image.
package testimages

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// BusyboxPath is where Debian's busybox-static installs the binary.
const BusyboxPath = "/bin/busybox"

// applets are the busybox commands linked into the image.
var applets = []string{"sh", "ash", "cat", "echo", "sleep", "ls", "env", "hostname", "id", "ps", "wget", "nc", "nslookup",
	"httpd", "true", "false", "test", "[", "mkdir", "rm", "cp", "mv", "touch", "date", "grep", "head", "tail", "wc", "sed", "awk",
	"ip", "ifconfig", "ping", "top", "kill", "tar", "vi", "printf", "uname", "whoami", "find", "chmod", "chown", "dd", "df", "du", "mount", "seq", "tee", "yes"}

type file struct {
	name     string
	mode     int64
	data     []byte
	linkname string
	dir      bool
}

// BusyboxTar writes an image named ref holding busybox and its applets.
func BusyboxTar(w io.Writer, ref string) error {
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return fmt.Errorf("read %s (apt-get install busybox-static): %w", BusyboxPath, err)
	}
	files := []file{
		{name: "bin/", dir: true, mode: 0o755},
		{name: "bin/busybox", mode: 0o755, data: bb},
		{name: "etc/", dir: true, mode: 0o755},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnobody:x:65534:\n")},
		{name: "tmp/", dir: true, mode: 0o1777},
		{name: "root/", dir: true, mode: 0o700},
		{name: "var/", dir: true, mode: 0o755},
		{name: "www/", dir: true, mode: 0o755},
		{name: "www/index.html", mode: 0o644, data: []byte("hello from nanokube\n")},
	}
	for _, a := range applets {
		files = append(files, file{name: "bin/" + a, linkname: "busybox", mode: 0o777})
	}
	return writeImage(w, ref, files, imageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}})
}

// BinaryTar writes an image named ref holding one static binary as its
// entrypoint, plus busybox for debugging when present.
func BinaryTar(w io.Writer, ref, binary string) error {
	data, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	files := []file{{name: "app", mode: 0o755, data: data}, {name: "tmp/", dir: true, mode: 0o1777}}
	return writeImage(w, ref, files, imageConfig{Entrypoint: []string{"/app"}, Env: []string{"PATH=/bin"}})
}

type imageConfig struct {
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	Env        []string `json:"Env,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// writeImage writes the archive: the layer, config and manifest blobs, an
// OCI index naming the image, and docker's manifest.json.
func writeImage(w io.Writer, ref string, files []file, cfg imageConfig) error {
	var layer bytes.Buffer
	lt := tar.NewWriter(&layer)
	epoch := time.Unix(0, 0)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: epoch, Uname: "root", Gname: "root"}
		switch {
		case f.dir:
			h.Typeflag = tar.TypeDir
		case f.linkname != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.linkname
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := lt.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := lt.Write(f.data); err != nil {
				return err
			}
		}
	}
	if err := lt.Close(); err != nil {
		return err
	}
	layerBytes := layer.Bytes()
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "created": epoch.UTC().Format(time.RFC3339),
		"config": cfg,
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest(layerBytes)}},
		// One history entry per layer, so `docker history` and builds on
		// top of the image line layers and history up.
		"history": []map[string]any{{"created": epoch.UTC().Format(time.RFC3339), "created_by": "nanokube testimages: " + ref}},
	})
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: digest(config), Size: int64(len(config))},
		"layers": []descriptor{{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: digest(layerBytes), Size: int64(len(layerBytes))}},
	})
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []descriptor{{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: digest(manifest), Size: int64(len(manifest)),
			Annotations: map[string]string{"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref}}},
	})
	blob := func(b []byte) string { return "blobs/sha256/" + digest(b)[len("sha256:"):] }
	docker, _ := json.Marshal([]map[string]any{{"Config": blob(config), "RepoTags": []string{ref}, "Layers": []string{blob(layerBytes)}}})
	out := tar.NewWriter(w)
	entries := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{blob(layerBytes), layerBytes}, {blob(config), config}, {blob(manifest), manifest},
		{"index.json", index}, {"manifest.json", docker},
	}
	for _, e := range entries {
		if err := out.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := out.Write(e.data); err != nil {
			return err
		}
	}
	return out.Close()
}
