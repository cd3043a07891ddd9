//go:build linux

package network

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
)

// maxNodes bounds the node names Residue checks for links.
const maxNodes = 32

// Residue lists what of profile is still present in the current netns and
// the mount table: its bridge, node veths, netns files and mounts.
func Residue(profile string) ([]string, error) {
	var left []string
	names := map[string]bool{BridgeName(profile): true}
	for i := 1; i <= maxNodes; i++ {
		node := profile
		if i > 1 {
			node = fmt.Sprintf("%s-m%02d", profile, i)
		}
		names[vethName(profile, node)] = true
	}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if names[l.Attrs().Name] {
			left = append(left, "link "+l.Attrs().Name)
		}
	}
	dir := filepath.Join(RunDir, profile)
	if entries, err := os.ReadDir(filepath.Join(dir, "netns")); err == nil {
		for _, e := range entries {
			left = append(left, "netns "+filepath.Join(dir, "netns", e.Name()))
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			left = append(left, "mount "+f[4])
		}
	}
	return left, nil
}
