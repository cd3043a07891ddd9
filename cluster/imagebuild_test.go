package cluster

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestDialHijack: the upgraded connection carries bytes both ways, meta
// arrives as headers, and a refusal comes back as the server's message.
func TestDialHijack(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/session" || r.Header.Get("X-Docker-Expose-Session-Uuid") != "abc" {
			http.Error(w, `{"message":"no such session"}`, http.StatusBadRequest)
			return
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+r.Header.Get("Upgrade")+"\r\n\r\n")
		io.Copy(conn, conn) // echo
	})}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(lis) }()
	t.Cleanup(func() { srv.Close(); <-done })

	ctx := context.Background()
	conn, err := dialHijack(ctx, sock, "/session", "h2c", map[string][]string{"X-Docker-Expose-Session-Uuid": {"abc"}})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Errorf("echo = %q, %v", buf, err)
	}
	conn.Close()
	if _, err := dialHijack(ctx, sock, "/grpc", "h2c", nil); err == nil || !strings.Contains(err.Error(), "no such session") {
		t.Errorf("a refused upgrade: %v", err)
	}
}

func TestImageBuildNeedsARunningProfile(t *testing.T) {
	p := NewProfile(t.TempDir(), "idle")
	if _, err := ImageBuild(context.Background(), ImageBuildOptions{Profile: p, Dir: "."}); err == nil || !strings.Contains(err.Error(), `profile "idle" is not running`) {
		t.Errorf("ImageBuild on a stopped profile: %v", err)
	}
}
