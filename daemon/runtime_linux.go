//go:build linux

package daemon

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/nanokube/nanokube/cluster"
	"github.com/nanokube/nanokube/runtime"
)

// containerdConfig places a profile's managed containerd: images and
// snapshots under the profile, runtime state and the socket under /run.
func containerdConfig(p cluster.Profile, cfg cluster.Config, log *logWriter) runtime.ContainerdConfig {
	return runtime.ContainerdConfig{
		Address:   cfg.ContainerdAddress,
		Root:      filepath.Join(p.Dir, "containerd"),
		State:     filepath.Join(p.RunDir(), "containerd"),
		Namespace: runtime.Namespace(p.Name),
		Log:       log,
	}
}

// logWriter sends containerd's output to the daemon log, one record per line.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.log.Debug(line, "component", "containerd")
	}
	return len(b), nil
}

// removeContainers deletes every container and image of the profile (used
// by delete), starting its containerd for the purpose when needed.
func removeContainers(ctx context.Context, p cluster.Profile, cfg cluster.Config) error {
	cd, err := runtime.StartContainerd(ctx, containerdConfig(p, cfg, &logWriter{slog.New(slog.DiscardHandler)}))
	if err != nil {
		return err
	}
	rt := runtime.New(cd.Client(), runtime.Namespace(p.Name))
	rerr := rt.RemoveAll(ctx)
	if err := cd.Stop(ctx); err != nil && rerr == nil {
		rerr = err
	}
	return rerr
}
