//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/nanokube/nanokube/network"
)

// testRegistry is a tiny OCI distribution registry (pull and push of
// blobs and manifests) with basic auth, served on loopback inside the lab
// netns, where the daemon pulls from. Repositories under public/ can be
// pulled without credentials.
type testRegistry struct {
	addr       string
	user, pass string

	mu        sync.Mutex
	blobs     map[string][]byte
	manifests map[string]manifestBlob // repo:tag and repo@digest
	uploads   map[string]*bytes.Buffer
	nextID    int
}

type manifestBlob struct {
	mediaType string
	data      []byte
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// labAddress adds ip to the lab's loopback device for the test: a
// registry there is not on loopback, so plain HTTP to it needs
// --insecure-registry.
func labAddress(t *testing.T, ip string) {
	t.Helper()
	if out, err := exec.Command("ip", "-n", theLab.Name, "addr", "add", ip+"/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("add %s to the lab: %v: %s", ip, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "-n", theLab.Name, "addr", "del", ip+"/32", "dev", "lo").Run() })
}

func startRegistry(t *testing.T, ip, user, pass string) *testRegistry {
	t.Helper()
	ln, err := network.ListenTCP(theLab.Netns, net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listen for the registry in the lab: %v", err)
	}
	r := &testRegistry{addr: ln.Addr().String(), user: user, pass: pass, blobs: map[string][]byte{},
		manifests: map[string]manifestBlob{}, uploads: map[string]*bytes.Buffer{}}
	srv := &http.Server{Handler: r}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return r
}

func (r *testRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	path := strings.TrimPrefix(req.URL.Path, "/v2/")
	if u, p, ok := req.BasicAuth(); !(ok && u == r.user && p == r.pass) && !(strings.HasPrefix(path, "public/") && (req.Method == http.MethodGet || req.Method == http.MethodHead)) {
		w.Header().Set("WWW-Authenticate", `Basic realm="nanokube-e2e"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		return
	}
	if req.URL.Path == "/v2/" || req.URL.Path == "/v2" {
		w.WriteHeader(http.StatusOK)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case strings.Contains(path, "/manifests/"):
		repo, ref, _ := strings.Cut(path, "/manifests/")
		key := repo + ":" + ref
		if strings.HasPrefix(ref, "sha256:") {
			key = repo + "@" + ref
		}
		switch req.Method {
		case http.MethodPut:
			data, _ := io.ReadAll(req.Body)
			m := manifestBlob{mediaType: req.Header.Get("Content-Type"), data: data}
			r.manifests[key] = m
			r.manifests[repo+"@"+sha(data)] = m
			w.Header().Set("Docker-Content-Digest", sha(data))
			w.WriteHeader(http.StatusCreated)
		case http.MethodGet, http.MethodHead:
			m, ok := r.manifests[key]
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
				return
			}
			w.Header().Set("Content-Type", m.mediaType)
			w.Header().Set("Docker-Content-Digest", sha(m.data))
			w.Header().Set("Content-Length", fmt.Sprint(len(m.data)))
			if req.Method == http.MethodGet {
				w.Write(m.data)
			}
		}
	case strings.Contains(path, "/blobs/uploads/"):
		repo, id, _ := strings.Cut(path, "/blobs/uploads/")
		switch req.Method {
		case http.MethodPost:
			r.nextID++
			id = fmt.Sprint(r.nextID)
			r.uploads[id] = &bytes.Buffer{}
			w.Header().Set("Location", "/v2/"+repo+"/blobs/uploads/"+id)
			w.WriteHeader(http.StatusAccepted)
		case http.MethodPatch, http.MethodPut:
			buf := r.uploads[id]
			if buf == nil {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			io.Copy(buf, req.Body)
			if req.Method == http.MethodPatch {
				w.Header().Set("Location", "/v2/"+repo+"/blobs/uploads/"+id)
				w.WriteHeader(http.StatusAccepted)
				return
			}
			dgst := req.URL.Query().Get("digest")
			if sha(buf.Bytes()) != dgst {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			r.blobs[dgst] = buf.Bytes()
			delete(r.uploads, id)
			w.Header().Set("Docker-Content-Digest", dgst)
			w.WriteHeader(http.StatusCreated)
		}
	case strings.Contains(path, "/blobs/"):
		_, dgst, _ := strings.Cut(path, "/blobs/")
		b, ok := r.blobs[dgst]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.Header().Set("Docker-Content-Digest", dgst)
		w.Header().Set("Content-Type", "application/octet-stream")
		if req.Method == http.MethodGet {
			w.Write(b)
		}
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// push uploads an OCI image archive (as testimages writes it) to repo:tag
// over the registry's HTTP API with basic auth, like `docker push`.
func (r *testRegistry) push(t *testing.T, archive []byte, repo, tag string) {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read image archive: %v", err)
		}
		files[h.Name], _ = io.ReadAll(tr)
	}
	var index struct {
		Manifests []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("image archive index: %v", err)
	}
	blob := func(d string) []byte { return files["blobs/sha256/"+strings.TrimPrefix(d, "sha256:")] }
	manifest := blob(index.Manifests[0].Digest)
	var m struct {
		Config struct{ Digest string }   `json:"config"`
		Layers []struct{ Digest string } `json:"layers"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatalf("image manifest: %v", err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
		return network.DialContext(ctx, theLab.Netns, n, a)
	}}}
	do := func(method, url, ctype string, body []byte, want int) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		req.SetBasicAuth(r.user, r.pass)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %s, want %d", method, url, resp.Status, want)
		}
		return resp
	}
	base := "http://" + r.addr + "/v2/" + repo
	for _, d := range append([]string{m.Config.Digest}, func() (ds []string) {
		for _, l := range m.Layers {
			ds = append(ds, l.Digest)
		}
		return
	}()...) {
		loc := do(http.MethodPost, base+"/blobs/uploads/", "", nil, http.StatusAccepted).Header.Get("Location")
		do(http.MethodPut, "http://"+r.addr+loc+"?digest="+d, "application/octet-stream", blob(d), http.StatusCreated)
	}
	do(http.MethodPut, base+"/manifests/"+tag, index.Manifests[0].MediaType, manifest, http.StatusCreated)
}
