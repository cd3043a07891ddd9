//go:build linux

package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"golang.org/x/sys/unix"
)

// ContainerdConfig says which containerd to use.
type ContainerdConfig struct {
	Address   string // an existing containerd socket; "" = run a managed one
	Root      string // managed: persistent state (images, snapshots)
	State     string // managed: runtime state and the socket
	Namespace string // containerd namespace, nanokube-<profile>
	Log       io.Writer
}

// Containerd is a connected containerd, managed or not.
type Containerd struct {
	cfg     ContainerdConfig
	client  *client.Client
	proc    *os.Process
	managed bool
}

// SocketPath is the managed containerd's socket under state.
func SocketPath(state string) string { return filepath.Join(state, "containerd.sock") }

// StartContainerd connects to containerd, starting a managed one when no
// address is given (or adopting the managed one still running after a
// crash). The managed containerd runs in its own session so pods survive a
// kill -9 of the daemon.
func StartContainerd(ctx context.Context, cfg ContainerdConfig) (*Containerd, error) {
	c := &Containerd{cfg: cfg}
	addr := cfg.Address
	if addr == "" {
		c.managed = true
		addr = SocketPath(cfg.State)
		// After a kill -9 of the daemon its containerd still runs: adopt it.
		if proc := findPid(cfg.State); proc != nil && proc.Signal(syscall.Signal(0)) == nil {
			if cl, err := dial(ctx, addr, 2*time.Second); err == nil {
				c.client, c.proc = cl, proc
				return c, nil
			}
		}
		os.Remove(addr) // a stale socket of an ended containerd
		if err := c.spawn(); err != nil {
			return nil, err
		}
	}
	cl, err := dial(ctx, addr, 20*time.Second)
	if err != nil {
		c.Stop(context.Background())
		return nil, fmt.Errorf("connect to containerd at %s: %w", addr, err)
	}
	c.client = cl
	return c, nil
}

// dial waits for containerd to answer, up to timeout.
func dial(ctx context.Context, addr string, timeout time.Duration) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if _, err := os.Stat(addr); err == nil {
			cl, err := client.New(addr, client.WithTimeout(timeout))
			if err == nil {
				vctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				_, err = cl.Version(vctx)
				cancel()
				if err == nil {
					return cl, nil
				}
				cl.Close()
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

const containerdConfig = `version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = ""
[metrics]
  address = ""
`

func (c *Containerd) spawn() error {
	for _, d := range []string{c.cfg.Root, c.cfg.State} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	conf := filepath.Join(c.cfg.State, "config.toml")
	sock := SocketPath(c.cfg.State)
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(containerdConfig, c.cfg.Root, c.cfg.State, sock, sock+".ttrpc")), 0o600); err != nil {
		return fmt.Errorf("write containerd config: %w", err)
	}
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return errors.New("containerd not found: run ./install.sh (apt-get install containerd runc)")
	}
	cmd := exec.Command(bin, "--config", conf)
	cmd.Stdout, cmd.Stderr = c.cfg.Log, c.cfg.Log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start containerd: %w", err)
	}
	c.proc = cmd.Process
	if err := os.WriteFile(filepath.Join(c.cfg.State, "containerd.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		return err
	}
	// Reap it when it exits so it does not linger as a zombie.
	go cmd.Wait()
	return nil
}

func findPid(state string) *os.Process {
	b, err := os.ReadFile(filepath.Join(state, "containerd.pid"))
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		return nil
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil
	}
	return p
}

// Client is the connected containerd client.
func (c *Containerd) Client() *client.Client { return c.client }

// Stop closes the connection and, for a managed containerd, ends it
// gracefully (running containers keep running in their shims).
func (c *Containerd) Stop(ctx context.Context) error {
	if c.client != nil {
		c.client.Close()
	}
	if !c.managed || c.proc == nil {
		return nil
	}
	pidfd, err := unix.PidfdOpen(c.proc.Pid, 0)
	if err != nil {
		return nil // already gone
	}
	defer unix.Close(pidfd)
	if err := c.proc.Signal(syscall.SIGTERM); err != nil {
		return nil
	}
	if exited(pidfd, 10*time.Second) {
		return nil
	}
	c.proc.Kill()
	return errors.New("containerd did not stop within 10s and was killed")
}

// exited waits up to timeout for the process behind pidfd to end.
func exited(pidfd int, timeout time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(timeout.Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
}

// ReapShims waits up to timeout for the shims of the containerd whose
// state dir is state to exit (they go shortly after their task is deleted)
// and kills those still there, so a deleted profile leaves no process.
func ReapShims(state string, timeout time.Duration) error {
	marker := []byte("-address\x00" + SocketPath(state))
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	deadline := time.Now().Add(timeout)
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, marker) || !bytes.Contains(b, []byte("containerd-shim")) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // already gone
		}
		if !exited(fd, time.Until(deadline)) {
			unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			exited(fd, time.Second)
		}
		unix.Close(fd)
	}
	return nil
}
