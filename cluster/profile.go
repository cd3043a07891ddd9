// Package cluster is the library behind the nanokube CLI: profiles and their
// files, certificates, kubeconfig, and the lifecycle (start, stop, delete,
// status) of a profile's daemon. It is portable (it also builds for macOS) and
// talks to the daemon only through files, a readiness pipe, signals and the API.
package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"
)

// DefaultProfile is the profile used when none is given.
const DefaultProfile = "nanokube"

// RunDir holds runtime state shared by all profiles (sockets, netns mounts).
const RunDir = "/run/nanokube"

// Home returns $NANOKUBE_HOME, or ~/.nanokube.
func Home() string {
	if h := os.Getenv("NANOKUBE_HOME"); h != "" {
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = "/root"
	}
	return filepath.Join(home, ".nanokube")
}

var profileNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ValidateProfileName checks that name can name a profile: a DNS label of at
// most 40 characters, because it also names a kubeconfig context, a
// containerd namespace and network devices.
func ValidateProfileName(name string) error {
	if len(name) > 40 || !profileNameRE.MatchString(name) {
		return fmt.Errorf("invalid profile name %q: use lower-case letters, digits and '-', at most 40 characters", name)
	}
	return nil
}

// Profile locates one cluster's files.
type Profile struct {
	Name string
	Home string // $NANOKUBE_HOME
	Dir  string // $NANOKUBE_HOME/profiles/<name>
}

// NewProfile returns the profile called name under home.
func NewProfile(home, name string) Profile {
	return Profile{Name: name, Home: home, Dir: filepath.Join(home, "profiles", name)}
}

func (p Profile) ConfigFile() string { return filepath.Join(p.Dir, "config.json") }
func (p Profile) StateFile() string  { return filepath.Join(p.Dir, "state.json") }
func (p Profile) StoreFile() string  { return filepath.Join(p.Dir, "store.db") }
func (p Profile) CertsDir() string   { return filepath.Join(p.Dir, "certs") }
func (p Profile) LogFile() string    { return filepath.Join(p.Dir, "daemon.log") }
func (p Profile) PidFile() string    { return filepath.Join(p.Dir, "daemon.pid") }
func (p Profile) LockFile() string   { return filepath.Join(p.Dir, "daemon.lock") }

// DeletingFile marks a profile whose daemon stops for `nanokube delete`:
// its pods are killed at once instead of being given their grace periods,
// since nothing of them is kept.
func (p Profile) DeletingFile() string { return filepath.Join(p.Dir, "deleting") }

// RunDir is the profile's runtime directory (sockets, netns mounts).
func (p Profile) RunDir() string { return filepath.Join(RunDir, p.Name) }

// ControlSocket is the daemon's control endpoint (node add/delete): HTTP
// over a unix socket in the runtime directory, root only.
func (p Profile) ControlSocket() string { return filepath.Join(p.RunDir(), "control.sock") }

// Exists reports whether the profile has been created.
func (p Profile) Exists() bool {
	_, err := os.Stat(p.ConfigFile())
	return err == nil
}

// Config is what `start` decided for a profile; it is kept across restarts.
type Config struct {
	Name              string    `json:"name"`
	Driver            string    `json:"driver"` // netns | host
	Nodes             int       `json:"nodes"`
	Ephemeral         bool      `json:"ephemeral,omitempty"`
	APIServerPort     int       `json:"apiServerPort"`
	ContainerdAddress string    `json:"containerdAddress,omitempty"`
	DNSUpstream       []string  `json:"dnsUpstream,omitempty"`
	HostAccess        bool      `json:"hostAccess"`
	CreatedAt         time.Time `json:"createdAt"`

	// ExtraConfig are component settings (--extra-config), by key.
	ExtraConfig map[string]string `json:"extraConfig,omitempty"`
	// NetworkBackend connects the nodes' pod ranges: vxlan (default) or host-gw.
	NetworkBackend string `json:"networkBackend,omitempty"`
	// Runtime runs the pods: "" (containerd) or RuntimeFake (a hidden
	// development mode: in-memory containers, no netns, the host driver).
	Runtime string `json:"runtime,omitempty"`
	// InsecureRegistries (host:port) are pulled from over plain HTTP or
	// unverified TLS (--insecure-registry, like minikube's).
	InsecureRegistries []string `json:"insecureRegistries,omitempty"`
}

// RuntimeFake is the in-memory runtime (`nanokube start --runtime=fake`).
const RuntimeFake = "fake"

// State is what the running daemon reports about the cluster it built.
type State struct {
	Subnet      string      `json:"subnet,omitempty"`
	Bridge      string      `json:"bridge,omitempty"`
	APIEndpoint string      `json:"apiEndpoint"`
	Nodes       []NodeState `json:"nodes"`
}

// NodeState is one node's address and pod range.
type NodeState struct {
	Name    string `json:"name"`
	IP      string `json:"ip"`
	PodCIDR string `json:"podCIDR,omitempty"`
}

// LoadConfig reads the profile's config.json.
func (p Profile) LoadConfig() (Config, error) {
	var c Config
	if err := readJSON(p.ConfigFile(), &c); err != nil {
		return c, err
	}
	return c, nil
}

// SaveConfig writes config.json atomically.
func (p Profile) SaveConfig(c Config) error { return writeJSON(p.ConfigFile(), c) }

// LoadState reads state.json, written by the daemon.
func (p Profile) LoadState() (State, error) {
	var s State
	err := readJSON(p.StateFile(), &s)
	return s, err
}

// SaveState writes state.json atomically.
func (p Profile) SaveState(s State) error { return writeJSON(p.StateFile(), s) }

// ListProfiles returns the names of all profiles under home, sorted.
func ListProfiles(home string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(home, "profiles"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list profiles: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && NewProfile(home, e.Name()).Exists() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

// writeJSON writes v to path through a temp file and rename, so a crash
// leaves either the old or the new file.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'), 0o600)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create directory for %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
