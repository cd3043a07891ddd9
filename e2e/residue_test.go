//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nanokube/nanokube/network"
)

// residue lists everything of profile still present after a delete: state
// files, runtime dirs, mounts, network links, firewall rules, processes and
// kubeconfig entries. Links of other profiles that still run are not counted.
func (l *lab) residue(profile string) []string {
	var left []string
	for _, dir := range []string{filepath.Join(l.Home, "profiles", profile), filepath.Join("/run/nanokube", profile)} {
		if _, err := os.Stat(dir); err == nil {
			left = append(left, "directory "+dir)
		}
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(mi), "\n") {
			if strings.Contains(line, "/run/nanokube/"+profile+"/") {
				left = append(left, "mount "+line)
			}
		}
	}
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/nanokube-" + profile)
	v1, _ := filepath.Glob("/sys/fs/cgroup/*/nanokube-" + profile)
	for _, d := range append(cgroups, v1...) {
		left = append(left, "cgroup "+d)
	}
	left = append(left, l.leftLinks(profile)...)
	ctx := context.Background()
	if r := l.run(ctx, nil, "nft", "list", "tables"); r.code == 0 {
		for _, line := range strings.Split(r.stdout, "\n") {
			if strings.Contains(line, profile) || (strings.TrimSpace(line) == "table ip nanokube" && len(l.otherProfiles(profile)) == 0) {
				left = append(left, "nftables "+line)
			}
		}
	}
	if r := l.run(ctx, nil, "iptables-save"); r.code == 0 {
		for _, line := range strings.Split(r.stdout, "\n") {
			if strings.Contains(line, "nanokube:"+profile) {
				left = append(left, "iptables rule "+line)
			}
		}
	}
	if r := l.run(ctx, nil, "ip", "route", "show", "10.96.0.0/12"); strings.TrimSpace(r.stdout) != "" && len(l.otherProfiles(profile)) == 0 {
		left = append(left, "route "+strings.TrimSpace(r.stdout)+" (nanokube tunnel)")
	}
	left = append(left, processesOf(profile)...)
	if b, err := os.ReadFile(l.Kubeconfig); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(line) == "name: "+profile {
				left = append(left, "kubeconfig entry "+profile)
			}
		}
	}
	return left
}

// leftLinks returns the lab's links that belong to no running profile.
func (l *lab) leftLinks(profile string) []string {
	r := l.run(context.Background(), nil, "ip", "-j", "link", "show")
	if r.code != 0 {
		return []string{"cannot list links: " + r.stderr}
	}
	var links []struct {
		Name   string `json:"ifname"`
		Master string `json:"master"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &links); err != nil {
		return []string{"cannot parse links: " + err.Error()}
	}
	keep := map[string]bool{"lo": true}
	if entries, err := os.ReadDir(filepath.Join(l.Home, "profiles")); err == nil {
		for _, e := range entries {
			if e.Name() != profile {
				keep[network.BridgeName(e.Name())] = true
			}
		}
	}
	var left []string
	for _, link := range links {
		if keep[link.Name] || keep[link.Master] {
			continue
		}
		left = append(left, "link "+link.Name)
	}
	return left
}

// processesOf finds processes whose command line names the profile's daemon
// or state directory.
func processesOf(profile string) []string {
	var left []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		joined := strings.Join(args, " ")
		daemon := strings.Contains(joined, "daemon --profile "+profile) && strings.Contains(args[0], "nanokube")
		if daemon || strings.Contains(joined, "/profiles/"+profile+"/") || strings.Contains(joined, "/run/nanokube/"+profile+"/") {
			left = append(left, fmt.Sprintf("process %s: %s", filepath.Base(filepath.Dir(p)), joined))
		}
	}
	return left
}

// otherProfiles lists the lab's profiles other than profile.
func (l *lab) otherProfiles(profile string) []string {
	var out []string
	entries, _ := os.ReadDir(filepath.Join(l.Home, "profiles"))
	for _, e := range entries {
		if e.Name() != profile {
			out = append(out, e.Name())
		}
	}
	return out
}
