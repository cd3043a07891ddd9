//go:build linux

package dockerapi

import (
	"net/http"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ping answers API version negotiation. Builder-Version 2 says BuildKit is
// available (buildx uses it; the docker CLI without buildx uses the
// classic /build endpoint either way).
func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Builder-Version", "2")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Swarm", "inactive")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Write([]byte("OK"))
}

type versionComponent struct {
	Name    string            `json:"Name"`
	Version string            `json:"Version"`
	Details map[string]string `json:"Details,omitempty"`
}

func kernelVersion() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	cv, _ := s.cfg.Containerd.Version(r.Context())
	kernel := kernelVersion()
	engine := map[string]string{
		"ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion, "GitCommit": "", "GoVersion": goruntime.Version(),
		"Os": goruntime.GOOS, "Arch": goruntime.GOARCH, "KernelVersion": kernel, "Experimental": "false", "BuildTime": "",
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"Platform": map[string]string{"Name": "nanokube"},
		"Components": []versionComponent{
			{Name: "Engine", Version: s.cfg.Version, Details: engine},
			{Name: "containerd", Version: cv.Version, Details: map[string]string{"GitCommit": cv.Revision}},
			{Name: "buildkit", Version: buildkitVersion(), Details: map[string]string{"GitCommit": ""}},
		},
		"Version": s.cfg.Version, "ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion, "GitCommit": "",
		"GoVersion": goruntime.Version(), "Os": goruntime.GOOS, "Arch": goruntime.GOARCH, "KernelVersion": kernel,
		"BuildTime": "",
	})
}

// buildkitVersion is the embedded BuildKit's module version.
func buildkitVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/moby/buildkit" {
				return d.Version
			}
		}
	}
	return "unknown"
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

func cgroupVersion() string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "2"
	}
	return "1"
}

func memTotal() int64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var running, stopped int
	ctrs, err := s.containers(ctx)
	if err != nil {
		fail(w, err)
		return
	}
	for _, c := range ctrs {
		if c.running {
			running++
		} else {
			stopped++
		}
	}
	imgs, err := s.images(ctx)
	if err != nil {
		fail(w, err)
		return
	}
	cv, _ := s.cfg.Containerd.Version(ctx)
	arch := goruntime.GOARCH
	if arch == "amd64" {
		arch = "x86_64"
	} else if arch == "arm64" {
		arch = "aarch64"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"ID": "nanokube-" + s.cfg.Name, "Name": s.cfg.Name,
		"Containers": len(ctrs), "ContainersRunning": running, "ContainersPaused": 0, "ContainersStopped": stopped,
		"Images": len(imgs), "Driver": s.cfg.Snapshotter,
		"DriverStatus":       [][2]string{{"driver-type", "io.containerd.snapshotter.v1"}},
		"Plugins":            map[string]any{"Volume": []string{}, "Network": []string{}, "Authorization": nil, "Log": []string{}},
		"MemoryLimit":        true,
		"SwapLimit":          false,
		"CpuCfsPeriod":       true,
		"CpuCfsQuota":        true,
		"CPUShares":          true,
		"OomKillDisable":     false,
		"IPv4Forwarding":     true,
		"Debug":              false,
		"NFd":                0,
		"NGoroutines":        goruntime.NumGoroutine(),
		"SystemTime":         time.Now().Format(time.RFC3339Nano),
		"LoggingDriver":      "json-file",
		"CgroupDriver":       "cgroupfs",
		"CgroupVersion":      cgroupVersion(),
		"KernelVersion":      kernelVersion(),
		"OperatingSystem":    osName(),
		"OSType":             "linux",
		"Architecture":       arch,
		"NCPU":               goruntime.NumCPU(),
		"MemTotal":           memTotal(),
		"IndexServerAddress": "https://index.docker.io/v1/",
		"RegistryConfig":     s.registryConfig(),
		"DockerRootDir":      s.cfg.Root,
		"HttpProxy":          os.Getenv("HTTP_PROXY"),
		"HttpsProxy":         os.Getenv("HTTPS_PROXY"),
		"NoProxy":            os.Getenv("NO_PROXY"),
		"Labels":             []string{"nanokube.profile=" + s.cfg.Name},
		"ExperimentalBuild":  false,
		"ServerVersion":      s.cfg.Version,
		"Runtimes":           map[string]any{"runc": map[string]string{"path": "runc"}},
		"DefaultRuntime":     "runc",
		"Swarm":              map[string]any{"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": nil},
		"LiveRestoreEnabled": true,
		"Isolation":          "",
		"InitBinary":         "",
		"ContainerdCommit":   map[string]string{"ID": cv.Revision},
		"RuncCommit":         map[string]string{"ID": ""},
		"InitCommit":         map[string]string{"ID": ""},
		"SecurityOptions":    []string{},
		"Containerd":         map[string]any{"Address": s.cfg.Address, "Namespaces": map[string]string{"Containers": s.cfg.Namespace, "Plugins": s.cfg.Namespace}},
		"Warnings":           []string{},
	})
}

// registryConfig is dockerd's: the insecure registries as index configs
// with Secure false (what `docker info` lists as Insecure Registries).
func (s *Server) registryConfig() map[string]any {
	indexes := map[string]any{}
	for _, r := range s.cfg.InsecureRegistries {
		indexes[r] = map[string]any{"Name": r, "Mirrors": []string{}, "Secure": false, "Official": false}
	}
	return map[string]any{"IndexConfigs": indexes, "InsecureRegistryCIDRs": []string{"127.0.0.0/8", "::1/128"}, "Mirrors": []string{}}
}
