//go:build linux

package dockerapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testServer serves the routes that need no containerd on a real unix
// socket, the way the docker CLI reaches it.
func testServer(t *testing.T) (*http.Client, *Server) {
	t.Helper()
	s := &Server{cfg: Config{Namespace: "nanokube-test", Version: "v0.0.0-test"}, log: slog.New(slog.DiscardHandler)}
	s.builder = NewBuilder(BuilderConfig{Root: t.TempDir()})
	sock := filepath.Join(t.TempDir(), "docker.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.Handler()}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(lis) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}, s
}

func TestPing(t *testing.T) {
	c, s := testServer(t)
	defer func() {
		// Answering the API starts nothing heavy: BuildKit waits for a build.
		if s.builder.Started() {
			t.Error("BuildKit started without a build")
		}
	}()
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(m, "http://docker/_ping", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("Api-Version") != APIVersion || h.Get("Ostype") != "linux" || h.Get("Builder-Version") != "2" {
			t.Errorf("%s /_ping: %d %v", m, resp.StatusCode, h)
		}
		if want := map[string]string{"GET": "OK", "HEAD": ""}[m]; string(body) != want {
			t.Errorf("%s /_ping body %q, want %q", m, body, want)
		}
	}
}

func errorOf(t *testing.T, c *http.Client, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct{ Message string }
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s %s: error body is not {\"message\"}: %v", method, url, err)
	}
	return resp.StatusCode, m.Message
}

func TestVersionNegotiationAndUnsupported(t *testing.T) {
	c, _ := testServer(t)
	for url, want := range map[string]struct {
		code int
		msg  string
	}{
		"http://docker/v1.99/images/json":          {400, "client version 1.99 is too new. Maximum supported API version is 1.50"},
		"http://docker/v1.12/images/json":          {400, "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"},
		"http://docker/v1.50/containers/create":    {501, "POST /containers/create is not supported by nanokube's docker-env"},
		"http://docker/v1.44/volumes/create":       {501, "POST /volumes/create is not supported by nanokube's docker-env"},
		"http://docker/v1.50/containers/abc/start": {501, "POST /containers/abc/start is not supported by nanokube's docker-env"},
		"http://docker/grpc":                       {400, `POST /grpc needs Upgrade: h2c, not ""`},
	} {
		code, msg := errorOf(t, c, http.MethodPost, url)
		if code != want.code || !strings.HasPrefix(msg, want.msg) {
			t.Errorf("POST %s = %d %q, want %d %q", url, code, msg, want.code, want.msg)
		}
	}
}

func TestJSONStreamAndFrames(t *testing.T) {
	rec := httptest.NewRecorder()
	js := newJSONStream(rec)
	js.Write([]byte("#1 DONE 0.0s\n"))
	js.aux(map[string]string{"ID": "sha256:abc"})
	js.fail("boom")
	want := `{"stream":"#1 DONE 0.0s\n"}` + "\n" + `{"aux":{"ID":"sha256:abc"}}` + "\n" + `{"error":"boom","errorDetail":{"message":"boom"}}` + "\n"
	if rec.Body.String() != want || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("json stream = %q", rec.Body.String())
	}

	var b bytes.Buffer
	fw := &frameWriter{w: &b}
	fw.Write([]byte("hello\n"))
	fw.Write(nil)
	hdr := b.Bytes()[:8]
	if hdr[0] != 1 || binary.BigEndian.Uint32(hdr[4:]) != 6 || b.String()[8:] != "hello\n" || b.Len() != 14 {
		t.Errorf("frame = %q", b.Bytes())
	}
}

func TestContainerStatus(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		rec  containerRecord
		want string
	}{
		{containerRecord{running: true, hasTask: true, startedAt: now.Add(-5 * time.Minute)}, "Up 5 minutes"},
		{containerRecord{hasTask: true, exitCode: 2, finishedAt: now.Add(-2 * time.Hour)}, "Exited (2) 2 hours ago"},
		{containerRecord{}, "Created"},
	} {
		if got := c.rec.status(now); got != c.want {
			t.Errorf("status = %q, want %q", got, c.want)
		}
	}
}
