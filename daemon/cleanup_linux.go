//go:build linux

package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/nanokube/nanokube/agent/volume"
	"github.com/nanokube/nanokube/cluster"
	"github.com/nanokube/nanokube/network"
	"github.com/nanokube/nanokube/runtime"
)

// Cleanup removes everything profile p made on this host (its daemon must
// not be running): node namespaces, links, the bridge and runtime files. It
// then checks that nothing of the profile is left.
func Cleanup(ctx context.Context, p cluster.Profile) error {
	if _, running := cluster.DaemonRunning(p); running {
		return fmt.Errorf("the daemon of profile %q is running: nanokube stop -p %s first", p.Name, p.Name)
	}
	cfg, cfgErr := p.LoadConfig()
	st, stErr := p.LoadState()
	if cfgErr == nil && cfg.ContainerdAddress == "" {
		if _, err := os.Stat(filepath.Join(p.Dir, "containerd")); err == nil {
			if err := removeContainers(ctx, p, cfg); err != nil {
				return fmt.Errorf("remove containers: %w", err)
			}
		}
		// The pods' cgroups (the containers' own went with them).
		if cg, err := runtime.DetectCgroups(); err == nil {
			if err := cg.Remove("/" + runtime.Namespace(p.Name)); err != nil {
				return fmt.Errorf("remove cgroups: %w", err)
			}
		}
	}
	if cfgErr == nil && stErr == nil && cfg.Driver != "host" && st.Subnet != "" {
		_, subnet, err := net.ParseCIDR(st.Subnet)
		if err != nil {
			return fmt.Errorf("parse stored subnet %q: %w", st.Subnet, err)
		}
		n := &clusterNet{profile: p.Name, driver: cfg.Driver}
		n.pnet = network.ProfileNet{Profile: p.Name, Bridge: network.BridgeName(p.Name), Subnet: subnet, Gateway: gatewayOf(subnet)}
		if err := n.teardown(st.Nodes); err != nil {
			return err
		}
	}
	if cfgErr == nil && cfg.Driver == "host" {
		n := &clusterNet{profile: p.Name, driver: "host"}
		if err := n.podNet(n.nodeState(1)).Remove(); err != nil {
			return fmt.Errorf("remove host pod network: %w", err)
		}
		if err := network.RemovePolicies(""); err != nil {
			return fmt.Errorf("remove host network policy table: %w", err)
		}
	}
	// Memory-backed pod volumes (tmpfs) under the nodes' directories.
	if err := volume.UnmountUnder(filepath.Join(p.Dir, "nodes")); err != nil {
		return fmt.Errorf("unmount pod volumes: %w", err)
	}
	if err := network.UnmountAll(p.Name); err != nil {
		return fmt.Errorf("unmount namespaces: %w", err)
	}
	if err := os.RemoveAll(p.RunDir()); err != nil {
		return fmt.Errorf("remove %s: %w", p.RunDir(), err)
	}
	left, err := network.Residue(p.Name)
	if err != nil {
		return fmt.Errorf("check for leftovers: %w", err)
	}
	if len(left) > 0 {
		return fmt.Errorf("profile %q left behind: %s", p.Name, strings.Join(left, ", "))
	}
	return nil
}
