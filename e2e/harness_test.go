//go:build e2e

// Package e2e runs the real nanokube binary, the real kubectl and the real
// containerd inside a lab network namespace that has only loopback and no
// default route: nothing a test does can reach beyond this machine.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	labnet "github.com/nanokube/nanokube/internal/lab"
)

// lab is the shared test environment: one network namespace, one nanokube
// home and one kubeconfig for the whole run.
type lab struct {
	*labnet.Lab
	binary string
}

var theLab *lab

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e tests need root (network namespaces, containerd): run them as root")
		os.Exit(1)
	}
	l, err := newLab()
	if err != nil {
		fmt.Fprintln(os.Stderr, "set up the lab:", err)
		os.Exit(1)
	}
	theLab = l
	code := m.Run()
	if err := l.close(); err != nil {
		fmt.Fprintln(os.Stderr, "tear down the lab:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func newLab() (*lab, error) {
	nl, err := labnet.New(fmt.Sprintf("nk-e2e-%d", os.Getpid()))
	if err != nil {
		return nil, err
	}
	l := &lab{Lab: nl, binary: os.Getenv("NANOKUBE_BINARY")}
	if l.binary == "" {
		l.binary = filepath.Join(nl.Dir, "nanokube")
		// The same flags as `make build` (Makefile), so the suite tests the
		// binary users get.
		build := exec.Command("go", "build", "-trimpath", "-tags", "urfave_cli_no_docs,grpcnotrace", "-ldflags", "-s -w", "-o", l.binary, "../cmd/nanokube")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := build.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("build nanokube: %w: %s", err, out)
		}
	}
	return l, nil
}

func (l *lab) close() error {
	// Whatever a failed test left running is deleted, so the machine is clean.
	res := l.run(context.Background(), nil, l.binary, "delete", "--all")
	var errs []error
	if res.code != 0 {
		errs = append(errs, fmt.Errorf("nanokube delete --all: %s", res.stderr))
	}
	if err := l.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run executes a command inside the lab netns with the lab's home and
// kubeconfig. nsenter only enters the network namespace, so mounts the
// daemon makes stay visible to later commands.
func (l *lab) run(ctx context.Context, cred *syscall.Credential, name string, args ...string) result {
	cmd := l.Command(ctx, name, args...)
	if cred != nil {
		// An unprivileged user cannot enter the lab; such calls must fail
		// before they would touch the network anyway.
		cmd = exec.CommandContext(ctx, name, args...)
		cmd.Env = append(os.Environ(), "NANOKUBE_HOME="+l.Home, "KUBECONFIG="+l.Kubeconfig)
	}
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		res.code = -1
		res.stderr += err.Error()
	}
	return res
}

const cmdTimeout = 3 * time.Minute

// nanokube runs the CLI and fails the test unless it exits 0.
func (l *lab) nanokube(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	r := l.run(ctx, nil, l.binary, args...)
	if r.code != 0 {
		t.Fatalf("nanokube %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// nanokubeResult runs the CLI and returns whatever happened.
func (l *lab) nanokubeResult(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	return l.run(ctx, nil, l.binary, args...)
}

// kubectl runs the real kubectl against profile's context and fails the
// test unless it exits 0.
func (l *lab) kubectl(t *testing.T, profile string, args ...string) string {
	t.Helper()
	r := l.kubectlResult(t, profile, args...)
	if r.code != 0 {
		t.Fatalf("kubectl %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

func (l *lab) kubectlResult(t *testing.T, profile string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	return l.run(ctx, nil, "kubectl", append([]string{"--context", profile}, args...)...)
}

// startProfile starts a profile and deletes it (checking for residue) when
// the test ends.
func (l *lab) startProfile(t *testing.T, profile string, args ...string) result {
	t.Helper()
	r := l.nanokube(t, append([]string{"start", "-p", profile}, args...)...)
	t.Cleanup(func() { l.deleteProfile(t, profile) })
	return r
}

func (l *lab) deleteProfile(t *testing.T, profile string) {
	t.Helper()
	l.nanokube(t, "delete", "-p", profile)
	for _, left := range l.residue(profile) {
		t.Errorf("profile %q left behind: %s", profile, left)
	}
}
