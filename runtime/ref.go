package runtime

import "strings"

// NormalizeRef turns a short image name into its full reference like the
// docker CLI: app → docker.io/library/app:latest.
func NormalizeRef(ref string) string {
	name := ref
	domain := ""
	if i := strings.IndexByte(ref, '/'); i >= 0 {
		first := ref[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			domain, name = first, ref[i+1:]
		}
	}
	if domain == "" {
		domain = "docker.io"
		if !strings.Contains(name, "/") {
			name = "library/" + name
		}
	}
	last := name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		last = name[i+1:]
	}
	if !strings.Contains(last, ":") && !strings.Contains(name, "@") {
		name += ":latest"
	}
	return domain + "/" + name
}

// Namespace is the containerd namespace of a profile.
func Namespace(profile string) string { return "nanokube-" + profile }
