//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/nanokube/nanokube/network"
)

// ptySession is a command running on a terminal the test holds, the way
// a user runs `kubectl exec -it`.
type ptySession struct {
	t       *testing.T
	cmd     *exec.Cmd
	tty     *os.File
	mu      sync.Mutex
	out     bytes.Buffer
	mark    int           // expect searches from here
	changed chan struct{} // a read happened (or the output ended)
	ended   chan struct{} // the terminal reads EOF: the command is gone
}

// startPty runs kubectl on a new terminal of rows x cols.
func (l *lab) startPty(t *testing.T, profile string, env []string, args ...string) *ptySession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	t.Cleanup(cancel)
	cmd := l.Command(ctx, "kubectl", append([]string{"--context", profile}, args...)...)
	cmd.Env = append(cmd.Env, env...)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatalf("start kubectl %v on a terminal: %v", args, err)
	}
	s := &ptySession{t: t, cmd: cmd, tty: f, changed: make(chan struct{}, 1), ended: make(chan struct{})}
	go func() {
		defer close(s.ended)
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			s.mu.Lock()
			s.out.Write(buf[:n])
			s.mu.Unlock()
			select {
			case s.changed <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.ended
		f.Close()
	})
	return s
}

// expect waits until the output after the last match contains want.
func (s *ptySession) expect(want string) {
	s.t.Helper()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		rest := s.out.String()[s.mark:]
		if i := strings.Index(rest, want); i >= 0 {
			s.mark += i + len(want)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		select {
		case <-s.changed:
		case <-s.ended:
			s.mu.Lock()
			found := strings.Contains(s.out.String()[s.mark:], want)
			s.mu.Unlock()
			if !found {
				s.t.Fatalf("terminal output ended without %q:\n%s", want, s.output())
			}
		case <-deadline.C:
			s.t.Fatalf("no %q on the terminal within 60s:\n%s", want, s.output())
		}
	}
}

func (s *ptySession) send(text string) {
	s.t.Helper()
	if _, err := s.tty.Write([]byte(text)); err != nil {
		s.t.Fatalf("type %q: %v", text, err)
	}
}

func (s *ptySession) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// wait returns the command's exit code once it has ended.
func (s *ptySession) wait() int {
	s.t.Helper()
	<-s.ended
	err := s.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		s.t.Fatalf("kubectl on a terminal: %v", err)
	}
	return 0
}

// kubectlEnv runs kubectl with extra environment and optional stdin.
func (l *lab) kubectlEnv(t *testing.T, profile string, env []string, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := l.Command(ctx, "kubectl", append([]string{"--context", profile}, args...)...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		res.code, res.stderr = -1, res.stderr+err.Error()
	}
	return res
}

// streamProtocols are kubectl's two transports: WebSocket (v5 for exec/attach,
// SPDY tunnelled in a WebSocket for port-forward), tried first since
// kubectl 1.31, and the SPDY fallback.
var streamProtocols = []struct {
	name string
	env  []string
}{
	{"websocket", nil},
	{"spdy", []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false", "KUBECTL_PORT_FORWARD_WEBSOCKETS=false"}},
}

// TestIntegrationStreaming: exec (exit codes, stdin, -it with resize),
// attach, run --rm -it, port-forward to a pod and a Service, and cp both
// ways work through the API server with the real kubectl, over WebSocket
// and over SPDY; exec probes and lifecycle hooks run on the same exec.
func TestIntegrationStreaming(t *testing.T) {
	l := theLab
	const p = "stream"
	l.startProfile(t, p)
	t.Cleanup(func() {
		b, _ := os.ReadFile(filepath.Join(l.Home, "profiles", p, "daemon.log"))
		if t.Failed() {
			t.Logf("daemon log:\n%s", b[max(0, len(b)-20000):])
		}
	})
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	hostDir := t.TempDir()
	manifest := filepath.Join(t.TempDir(), "stream.yaml")
	os.WriteFile(manifest, []byte(`apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: `+busyboxRef+`
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
  - name: sidecar
    image: `+busyboxRef+`
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: term}
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  containers:
  - {name: shell, image: `+busyboxRef+`, command: ["sh"], stdin: true, tty: true}
---
apiVersion: v1
kind: Pod
metadata: {name: term2}
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  containers:
  - {name: shell, image: `+busyboxRef+`, command: ["sh"], stdin: true, tty: true}
---
apiVersion: v1
kind: Pod
metadata: {name: ticker}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: tick, image: `+busyboxRef+`, command: ["sh", "-c", "i=0; while :; do i=$((i+1)); echo tick-$i; sleep 1; done"]}
---
apiVersion: v1
kind: Pod
metadata: {name: hooks}
spec:
  terminationGracePeriodSeconds: 3
  volumes: [{name: host, hostPath: {path: `+hostDir+`}}]
  containers:
  - name: app
    image: `+busyboxRef+`
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    volumeMounts: [{name: host, mountPath: /host}]
    lifecycle:
      postStart: {exec: {command: ["sh", "-c", "echo started > /tmp/poststart"]}}
      preStop: {exec: {command: ["sh", "-c", "echo stopping > /host/prestop"]}}
    readinessProbe:
      exec: {command: ["test", "-f", "/tmp/poststart"]}
      periodSeconds: 1
    livenessProbe:
      exec: {command: ["sh", "-c", "test ! -f /tmp/sick || { echo sick; exit 1; }"]}
      periodSeconds: 1
      failureThreshold: 1
`), 0o644)
	k("apply", "-f", manifest)
	k("wait", "--for=condition=Ready", "pod/web", "pod/term", "pod/term2", "pod/ticker", "pod/hooks", "--timeout=90s")

	for _, proto := range streamProtocols {
		t.Run("exec-"+proto.name, func(t *testing.T) {
			r := l.kubectlEnv(t, p, proto.env, nil, "exec", "web", "-c", "sidecar", "--", "sh", "-c", "echo out; echo err >&2; hostname")
			if r.code != 0 || r.stdout != "out\nweb\n" || r.stderr != "err\n" {
				t.Errorf("exec: %s", r)
			}
			if r := l.kubectlEnv(t, p, proto.env, nil, "exec", "web", "-c", "httpd", "--", "sh", "-c", "exit 3"); r.code != 3 || !strings.Contains(r.stderr, "command terminated with exit code 3") {
				t.Errorf("exec exit 3: %s", r)
			}
			if r := l.kubectlEnv(t, p, proto.env, strings.NewReader("line one\nline two\n"), "exec", "-i", "web", "-c", "sidecar", "--", "wc", "-l"); r.code != 0 || strings.TrimSpace(r.stdout) != "2" {
				t.Errorf("exec -i (stdin until EOF): %s", r)
			}
			if r := l.kubectlEnv(t, p, proto.env, nil, "exec", "web", "-c", "nope", "--", "true"); r.code == 0 || !strings.Contains(r.stderr, "container nope is not valid for pod web") {
				t.Errorf("exec in a missing container: %s", r)
			}

			// -it on a terminal: the remote shell sees the terminal's size,
			// follows a resize, and its exit code is kubectl's.
			s := l.startPty(t, p, proto.env, "exec", "-it", "web", "-c", "sidecar", "--", "sh")
			s.expect("/ # ")
			s.send("busybox stty size; echo sum-$((20+22))\n")
			s.expect("40 120")
			s.expect("sum-42")
			if err := pty.Setsize(s.tty, &pty.Winsize{Rows: 30, Cols: 100}); err != nil {
				t.Fatal(err)
			}
			// The new size travels on its own stream: wait for it in the shell.
			s.send("until [ \"$(busybox stty size)\" = '30 100' ]; do sleep 1; done; echo resized-to-$(busybox stty size | busybox tr ' ' x)\n")
			s.expect("resized-to-30x100")
			s.send("exit 7\n")
			if code := s.wait(); code != 7 {
				t.Errorf("kubectl exec -it exit code %d, want 7:\n%s", code, s.output())
			}
		})
	}

	t.Run("attach", func(t *testing.T) {
		s := l.startPty(t, p, nil, "attach", "-it", "term")
		s.expect("If you don't see a command prompt, try pressing enter.")
		s.send("echo attached-$((2*3))\n")
		s.expect("attached-6")
		// The attached terminal takes the client's size (sent on its own stream).
		s.send("until [ \"$(busybox stty size)\" = '40 120' ]; do sleep 1; done; echo sized-$(busybox stty size | busybox tr ' ' x)\n")
		s.expect("sized-40x120")
		s.send("exit\n")
		if code := s.wait(); code != 0 {
			t.Errorf("kubectl attach exit code %d:\n%s", code, s.output())
		}
		k("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/term", "--timeout=60s")
		if logs := k("logs", "term"); !strings.Contains(logs, "attached-6") {
			t.Errorf("logs of the attached terminal lack its output: %q", logs)
		}
	})

	t.Run("attach-output", func(t *testing.T) {
		// A container without stdin or a terminal: attach streams what it
		// prints from now on.
		before := strings.Count(k("logs", "ticker"), "tick-")
		s := l.startPty(t, p, nil, "attach", "ticker")
		s.expect(fmt.Sprintf("tick-%d\r\n", before+2))
		if before >= 1 && strings.Contains(s.output(), "tick-1\r\n") {
			t.Errorf("attach replayed old output:\n%s", s.output())
		}
	})

	t.Run("run-rm-it", func(t *testing.T) {
		s := l.startPty(t, p, nil, "run", "once", "--image="+busyboxRef, "--rm", "-it", "--restart=Never", "--", "echo", "hi")
		s.expect(`pod "once" deleted`)
		if code := s.wait(); code != 0 {
			t.Errorf("kubectl run --rm -it exit code %d:\n%s", code, s.output())
		}
		if out := s.output(); !regexp.MustCompile(`(?m)^hi\r*$`).MatchString(out) || strings.Contains(out, "couldn't attach") {
			t.Errorf("kubectl run --rm -it -- echo hi printed:\n%q", out)
		}
		s = l.startPty(t, p, nil, "run", "shell", "--image="+busyboxRef, "--rm", "-it", "--restart=Never", "--", "sh")
		s.send("echo inside-$((5*5))\n")
		s.expect("inside-25")
		s.send("exit\n")
		s.expect(`pod "shell" deleted`)
		if code := s.wait(); code != 0 {
			t.Errorf("kubectl run --rm -it sh exit code %d:\n%s", code, s.output())
		}
		if r := l.kubectlResult(t, p, "get", "pod", "once", "shell"); r.code == 0 || !strings.Contains(r.stderr, `pods "once" not found`) {
			t.Errorf("pods of run --rm still there: %s", r)
		}
	})

	t.Run("debug", func(t *testing.T) {
		s := l.startPty(t, p, nil, "debug", "-it", "web", "--image="+busyboxRef, "--target=sidecar", "--", "sh")
		s.expect("If you don't see a command prompt, try pressing enter.")
		s.send("ps; echo debug-$((3*3))\n")
		s.expect("sleep 3600") // the target's process, seen from its PID namespace
		s.expect("debug-9")
		s.send("exit\n")
		if code := s.wait(); code != 0 {
			t.Errorf("kubectl debug -it exit code %d:\n%s", code, s.output())
		}
		k("wait", "--for=jsonpath={.status.ephemeralContainerStatuses[0].state.terminated.reason}=Completed", "pod/web", "--timeout=60s")
		if ready := k("get", "pod", "web", "-o", "jsonpath={.status.containerStatuses[*].ready}"); ready != "true true" {
			t.Errorf("after debugging, pod web containers ready = %q", ready)
		}
	})

	for _, proto := range streamProtocols {
		t.Run("port-forward-"+proto.name, func(t *testing.T) {
			for _, target := range []string{"pod/web", "svc/web"} {
				remote := "8080"
				if target == "svc/web" {
					remote = "80"
				}
				port := l.portForward(t, p, proto.env, target, remote)
				for i := 0; i < 2; i++ { // two connections over one forwarding session
					if body := labGet(t, l, port); body != "hello from nanokube\n" {
						t.Errorf("GET through port-forward %s: %q", target, body)
					}
				}
			}
		})
	}

	t.Run("cp", func(t *testing.T) {
		dir := t.TempDir()
		src := filepath.Join(dir, "in.txt")
		data := strings.Repeat("copied through kubectl cp\n", 5000)
		os.WriteFile(src, []byte(data), 0o644)
		k("cp", src, "web:/tmp/in.txt", "-c", "sidecar")
		if got := k("exec", "web", "-c", "sidecar", "--", "busybox", "md5sum", "/tmp/in.txt"); !strings.HasPrefix(got, md5hex(data)) {
			t.Errorf("file in the container: md5 %q, want %s", got, md5hex(data))
		}
		back := filepath.Join(dir, "back.txt")
		k("cp", "web:/tmp/in.txt", back, "-c", "sidecar")
		if got, err := os.ReadFile(back); err != nil || string(got) != data {
			t.Errorf("file copied back: %d bytes, err %v; want %d bytes", len(got), err, len(data))
		}
	})

	t.Run("hooks-and-exec-probes", func(t *testing.T) {
		if got := k("exec", "hooks", "--", "cat", "/tmp/poststart"); got != "started\n" {
			t.Errorf("postStart hook left %q", got)
		}
		k("exec", "hooks", "--", "touch", "/tmp/sick")
		k("wait", "--for=jsonpath={.status.containerStatuses[0].restartCount}=1", "pod/hooks", "--timeout=60s")
		if ev := k("get", "events", "--field-selector", "involvedObject.name=hooks,reason=Unhealthy", "-o", "jsonpath={.items[0].message}"); !strings.HasPrefix(ev, "Liveness probe failed: sick") {
			t.Errorf("Unhealthy event = %q", ev)
		}
		// The restart ran the preStop hook; deleting the pod runs it again.
		os.Remove(filepath.Join(hostDir, "prestop"))
		k("wait", "--for=condition=Ready", "pod/hooks", "--timeout=60s")
		k("delete", "pod", "hooks")
		if got, err := os.ReadFile(filepath.Join(hostDir, "prestop")); err != nil || string(got) != "stopping\n" {
			t.Errorf("preStop hook wrote %q (%v)", got, err)
		}
	})

	t.Run("attach-after-kill-9", func(t *testing.T) {
		// The daemon holds the terminal of term2; after a kill -9 the next
		// daemon adopts the container and connects to its terminal again.
		pid := daemonPid(t, p)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitGone(t, pid)
		l.nanokube(t, "start", "-p", p)
		k("wait", "--for=condition=Ready", "pod/term2", "--timeout=60s")
		s := l.startPty(t, p, nil, "attach", "-it", "term2")
		s.expect("If you don't see a command prompt, try pressing enter.")
		s.send("echo again-$((4*4))\n")
		s.expect("again-16")
		s.send("exit\n")
		if code := s.wait(); code != 0 {
			t.Errorf("kubectl attach after kill -9: exit code %d:\n%s", code, s.output())
		}
		k("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/term2", "--timeout=60s")
		if logs := k("logs", "term2"); !strings.Contains(logs, "again-16") {
			t.Errorf("logs after the daemon restart lack the terminal's output: %q", logs)
		}
		// The plain ticker's output is written by the daemon too: the
		// adopted container's log goes on, timed, without a gap.
		before := strings.Count(k("logs", "ticker"), "tick-")
		eventually(t, "the adopted ticker logs on", 30*time.Second, func() (bool, string) {
			logs := k("logs", "ticker", "--timestamps")
			return strings.Count(logs, "tick-") >= before+2, logs
		})
		for i, line := range strings.Split(strings.TrimSuffix(k("logs", "ticker", "--timestamps"), "\n"), "\n") {
			at, msg, _ := strings.Cut(line, " ")
			if _, err := time.Parse(time.RFC3339Nano, at); err != nil || msg != fmt.Sprintf("tick-%d", i+1) {
				t.Errorf("ticker log line %d after the daemon restart = %q, want a time and tick-%d", i+1, line, i+1)
				break
			}
		}
	})
}

// portForward starts `kubectl port-forward target :remote` and returns the
// local port it listens on (in the lab netns).
func (l *lab) portForward(t *testing.T, profile string, env []string, target, remote string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := l.Command(ctx, "kubectl", "--context", profile, "port-forward", target, ":"+remote)
	cmd.Env = append(cmd.Env, env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	re := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> ` + remote)
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if m := re.FindStringSubmatch(lines.Text()); m != nil {
			go io.Copy(io.Discard, stdout)
			return m[1]
		}
	}
	t.Fatalf("kubectl port-forward %s printed no forwarding line; stderr:\n%s", target, stderr.String())
	return ""
}

// labGet fetches / from 127.0.0.1:port inside the lab netns.
func labGet(t *testing.T, l *lab, port string) string {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return network.DialContext(ctx, l.Netns, "tcp", addr)
		},
	}}
	resp, err := client.Get("http://127.0.0.1:" + port + "/")
	if err != nil {
		t.Fatalf("GET through the forwarded port %s: %v", port, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read through the forwarded port %s: %v", port, err)
	}
	return string(b)
}

func md5hex(s string) string {
	return fmt.Sprintf("%x", md5.Sum([]byte(s)))
}
