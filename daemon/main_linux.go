//go:build linux

package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/nanokube/nanokube/cluster"
)

// progressEnv names the environment variable with which `start` tells the
// daemon that its progress pipe is open on cluster.ProgressFD.
const progressEnv = "NANOKUBE_PROGRESS_FD"

// Options are the daemon's hidden development flags.
type Options struct {
	// Runtime overrides the profile's runtime ("containerd" or "fake").
	Runtime string
	// PprofAddr, when set, serves net/http/pprof there while the daemon runs.
	PprofAddr string
}

// Main runs the daemon of profile p until ctx ends (SIGTERM/SIGINT), then
// stops every part in reverse order.
func Main(ctx context.Context, p cluster.Profile, o Options) error {
	progress := cluster.NewProgressWriter(nil)
	if os.Getenv(progressEnv) == strconv.Itoa(cluster.ProgressFD) {
		progress = cluster.NewProgressWriter(os.NewFile(uintptr(cluster.ProgressFD), "progress"))
	}
	err := run(ctx, p, o, progress)
	if err != nil {
		progress.Send(cluster.Progress{Error: err.Error()})
	}
	return err
}

func run(ctx context.Context, p cluster.Profile, o Options, progress *cluster.ProgressWriter) error {
	lock, ok, err := cluster.TryLock(p.LockFile())
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("the daemon of profile %q is already running", p.Name)
	}
	defer lock.Release()
	if err := os.WriteFile(p.PidFile(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	defer os.Remove(p.PidFile())
	// A delete that failed after stopping the daemon left its mark; this
	// start is not one to discard.
	if err := os.Remove(p.DeletingFile()); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove %s: %w", p.DeletingFile(), err)
	}
	cfg, err := p.LoadConfig()
	if err != nil {
		return fmt.Errorf("load profile config: %w", err)
	}
	switch o.Runtime {
	case "":
	case "containerd":
		cfg.Runtime = ""
	case cluster.RuntimeFake:
		if cfg.Driver != "host" {
			return fmt.Errorf("--runtime=fake needs the host driver (profile %q uses %s)", p.Name, cfg.Driver)
		}
		cfg.Runtime = cluster.RuntimeFake
	default:
		return fmt.Errorf("unknown runtime %q: use containerd or fake", o.Runtime)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if o.PprofAddr != "" {
		stop, err := servePprof(o.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	sys, err := New(ctx, Config{Profile: p, Cluster: cfg, Log: log, Progress: progress})
	if err != nil {
		return err
	}
	return sys.Run(ctx)
}
