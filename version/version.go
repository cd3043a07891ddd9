// Package version tells which nanokube this is and which Kubernetes API
// level it serves: the k8s.io/api release it was built with (0.37.x ⇒ v1.37.x).
package version

import (
	goruntime "runtime"
	"runtime/debug"
	"strings"

	apiversion "k8s.io/apimachinery/pkg/version"
)

// Version of nanokube; set at build time with -ldflags "-X ...version.Version=...".
var Version = "v0.1.0-dev"

// GitCommit is set at build time.
var GitCommit = ""

// fallbackKube is used when build information is missing (tests run
// without module data); keep it equal to go.mod's k8s.io/api.
const fallbackKube = "v0.37.2"

// Kubernetes returns the served Kubernetes version, e.g. "v1.37.2".
func Kubernetes() string {
	v := fallbackKube
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "k8s.io/api" {
				v = d.Version
			}
		}
	}
	// k8s.io/api v0.X.Y is Kubernetes v1.X.Y.
	return "v1." + strings.TrimPrefix(v, "v0.")
}

// KubernetesMinor returns "37" for v1.37.2.
func KubernetesMinor() string {
	parts := strings.SplitN(strings.TrimPrefix(Kubernetes(), "v"), ".", 3)
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

// Info is what the API server reports at /version.
func Info() apiversion.Info {
	v := Kubernetes()
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	info := apiversion.Info{
		GitVersion:   v,
		GitCommit:    GitCommit,
		GitTreeState: "clean",
		GoVersion:    goruntime.Version(),
		Compiler:     goruntime.Compiler,
		Platform:     goruntime.GOOS + "/" + goruntime.GOARCH,
	}
	if len(parts) >= 2 {
		info.Major, info.Minor = parts[0], parts[1]
	}
	return info
}
