//go:build linux

package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/nanokube/nanokube/dockerapi"
	"github.com/nanokube/nanokube/runtime"
	"github.com/nanokube/nanokube/version"
)

// setupDocker builds the Docker API over the cluster's image store and
// listens on the profile's docker.sock (`nanokube docker-env`). BuildKit
// itself starts on the first build.
func (s *System) setupDocker(rt *runtime.ContainerdRuntime) error {
	p := s.cfg.Profile
	cdCfg := containerdConfig(p, s.cfg.Cluster, nil)
	addr := cdCfg.Address
	if addr == "" {
		addr = runtime.SocketPath(cdCfg.State)
	}
	pods := s.ctrl.Informers().Core().V1().Pods().Lister()
	var err error
	s.docker, err = dockerapi.New(dockerapi.Config{
		Containerd: s.cd.Client(), Runtime: rt, Address: addr, Namespace: cdCfg.Namespace,
		Root: filepath.Join(p.Dir, "buildkit"), Name: p.Name, Version: version.Version, Log: s.log,
		InsecureRegistries: s.cfg.Cluster.InsecureRegistries,
		Pod: func(ns, name string) (*corev1.Pod, bool) {
			pod, err := pods.Pods(ns).Get(name)
			return pod, err == nil
		},
		Logs: s.podLogs,
	})
	if err != nil {
		return fmt.Errorf("build the Docker API: %w", err)
	}
	sock := p.DockerSocket()
	os.Remove(sock) // left by a daemon that was killed
	s.dockerLis, err = net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", sock, err)
	}
	// Like dockerd's socket: root and the docker group.
	gid := 0
	if g, err := user.LookupGroup("docker"); err == nil {
		gid, _ = strconv.Atoi(g.Gid)
	}
	if err := os.Chown(sock, 0, gid); err != nil {
		return fmt.Errorf("chown %s: %w", sock, err)
	}
	if err := os.Chmod(sock, 0o660); err != nil {
		return fmt.Errorf("chmod %s: %w", sock, err)
	}
	return nil
}

// serveDocker answers the Docker API until ctx ends.
func (s *System) serveDocker(ctx context.Context) error {
	if s.docker == nil {
		return nil // the fake runtime has no images to serve
	}
	if err := s.docker.Serve(ctx, s.dockerLis); err != nil {
		return fmt.Errorf("serve the Docker API: %w", err)
	}
	return nil
}
