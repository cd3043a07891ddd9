//go:build linux

package daemon

import (
	"context"
	"io"
	"path/filepath"
	"time"

	"github.com/nanokube/nanokube/agent"
	"github.com/nanokube/nanokube/cluster"
	"github.com/nanokube/nanokube/runtime"
)

// containerdConfig places a profile's managed containerd: images and
// snapshots under the profile, runtime state and the socket under /run.
func containerdConfig(p cluster.Profile, cfg cluster.Config, log io.Writer) runtime.ContainerdConfig {
	return runtime.ContainerdConfig{
		Address:   cfg.ContainerdAddress,
		Root:      filepath.Join(p.Dir, "containerd"),
		State:     filepath.Join(p.RunDir(), "containerd"),
		Namespace: runtime.Namespace(p.Name),
		Log:       log,
	}
}

// imageFS is where the managed containerd keeps its images, watched by the
// image GC of the control-plane node (the nodes share one image store); ""
// (no GC) for the other nodes and for a containerd nanokube does not manage.
func (s *System) imageFS(controlPlane bool) string {
	if !controlPlane || s.cfg.Cluster.ContainerdAddress != "" {
		return ""
	}
	return containerdConfig(s.cfg.Profile, s.cfg.Cluster, nil).Root
}

// imageGCPolicy is kubelet's image GC policy with the profile's
// --extra-config=kubelet.image-gc-… settings.
func imageGCPolicy(c cluster.Config) agent.ImageGCPolicy {
	p := agent.DefaultImageGCPolicy()
	if n, ok := c.ExtraInt(cluster.ImageGCHighThreshold); ok {
		p.HighThresholdPercent = n
	}
	if n, ok := c.ExtraInt(cluster.ImageGCLowThreshold); ok {
		p.LowThresholdPercent = n
	}
	if _, ok := c.ExtraConfig[cluster.ImageMinimumGCAge]; ok {
		p.MinimumAge = c.ExtraDuration(cluster.ImageMinimumGCAge)
	}
	if d := c.ExtraDuration(cluster.ImageGCPeriod); d > 0 {
		p.Period = d
	}
	return p
}

// removeContainers deletes every container and image of the profile (used
// by delete), starting its containerd for the purpose when needed.
func removeContainers(ctx context.Context, p cluster.Profile, cfg cluster.Config) error {
	cd, err := runtime.StartContainerd(ctx, containerdConfig(p, cfg, io.Discard))
	if err != nil {
		return err
	}
	rt := runtime.New(cd.Client(), runtime.Namespace(p.Name))
	rerr := rt.RemoveAll(ctx)
	if err := cd.Stop(ctx); err != nil && rerr == nil {
		rerr = err
	}
	if err := runtime.ReapShims(containerdConfig(p, cfg, io.Discard).State, 5*time.Second); err != nil && rerr == nil {
		rerr = err
	}
	return rerr
}
