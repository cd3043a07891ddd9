//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/nanokube/nanokube/internal/lab"
)

// DockerBuildResult times `docker build` of a small two-stage Dockerfile
// through docker-env, and the daemon's memory before BuildKit starts and
// after the builds.
type DockerBuildResult struct {
	FirstBuildS        float64 `json:"first_build_seconds"` // includes starting BuildKit
	CachedBuildS       float64 `json:"cached_build_seconds"`
	DaemonRSSBeforeMB  float64 `json:"daemon_rss_before_first_build_mb"`
	DaemonRSSAfterMB   float64 `json:"daemon_rss_after_builds_mb"`
	BuilderLoadedRSSMB float64 `json:"builder_loaded_rss_mb"`
	Skipped            string  `json:"skipped,omitempty"`
}

const benchDockerfile = `FROM ` + benchImage + ` AS build
ARG N=1
RUN mkdir /out && seq 1 $N > /out/numbers && echo built > /out/msg
FROM ` + benchImage + `
COPY --from=build /out /out
COPY app.txt /app.txt
CMD ["cat", "/out/msg"]
`

// dockerBuild runs the build benchmark; the bench image must be loaded.
func dockerBuild(ctx context.Context, l *lab.Lab, daemon int) (DockerBuildResult, error) {
	var r DockerBuildResult
	docker, err := exec.LookPath("docker")
	if err != nil {
		r.Skipped = "no docker CLI on this machine"
		return r, nil
	}
	dir := filepath.Join(l.Dir, "build-bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(benchDockerfile), 0o644)
	os.WriteFile(filepath.Join(dir, "app.txt"), []byte("bench\n"), 0o644)
	rss := func() float64 {
		_, by, err := rssOf(daemon, l.Home)
		if err != nil {
			return 0
		}
		return by["nanokube-daemon"]
	}
	r.DaemonRSSBeforeMB = rss()
	build := func() (time.Duration, error) {
		begin := time.Now()
		cmd := l.Command(ctx, docker, "build", "-q", "-t", "bench:build", dir)
		cmd.Env = append(cmd.Env, "DOCKER_HOST=unix:///run/nanokube/"+profile+"/docker.sock")
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("docker build: %w: %s", err, out)
		}
		return time.Since(begin), nil
	}
	first, err := build()
	if err != nil {
		return r, err
	}
	cached, err := build()
	if err != nil {
		return r, err
	}
	r.FirstBuildS, r.CachedBuildS = first.Seconds(), cached.Seconds()
	// Let the builds' garbage go before measuring what stays.
	time.Sleep(5 * time.Second)
	r.DaemonRSSAfterMB = rss()
	r.BuilderLoadedRSSMB = r.DaemonRSSAfterMB - r.DaemonRSSBeforeMB
	return r, nil
}
