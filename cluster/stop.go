package cluster

import (
	"context"
	"fmt"
	"io"
	"syscall"
	"time"
)

// StopTimeout bounds a graceful stop; pods get their grace periods within it.
const StopTimeout = 90 * time.Second

// Stop ends the profile's daemon gracefully and keeps its data. It returns
// when the daemon is gone.
func Stop(ctx context.Context, p Profile, out io.Writer) error {
	if !p.Exists() {
		return errNoProfile(p)
	}
	pid, running := DaemonRunning(p)
	if !running {
		fmt.Fprintf(out, "✋  nanokube profile %q is not running\n", p.Name)
		return nil
	}
	begin := time.Now()
	fmt.Fprintf(out, "✋  Stopping nanokube profile %q ...\n", p.Name)
	if err := stopDaemon(ctx, p, pid); err != nil {
		return err
	}
	fmt.Fprintf(out, "🛑  Stopped in %s (data kept; nanokube start resumes it)\n", formatElapsed(time.Since(begin)))
	return nil
}

// stopDaemon sends SIGTERM and waits until the daemon released its lock;
// after StopTimeout it kills it.
func stopDaemon(ctx context.Context, p Profile, pid int) error {
	if pid <= 0 {
		return fmt.Errorf("daemon of profile %q holds its lock but %s has no pid", p.Name, p.PidFile())
	}
	if err := signalProcess(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal daemon (pid %d): %w", pid, err)
	}
	gone := make(chan error, 1)
	go func() { gone <- WaitLock(p.LockFile()) }()
	timer := time.NewTimer(StopTimeout)
	defer timer.Stop()
	select {
	case err := <-gone:
		return err
	case <-ctx.Done():
	case <-timer.C:
	}
	// Out of patience: kill it, which releases the lock and ends the waiter.
	_ = signalProcess(pid, syscall.SIGKILL)
	if err := <-gone; err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("stop interrupted, daemon killed: %w", ctx.Err())
	}
	return fmt.Errorf("daemon did not stop within %s and was killed", StopTimeout)
}

func errNoProfile(p Profile) error {
	return fmt.Errorf("profile %q does not exist: nanokube profile list", p.Name)
}
