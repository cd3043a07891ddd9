package agent

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/nanokube/nanokube/runtime"
)

// keyring holds registry credentials by registry host[/path], matched
// against an image like kubelet's credentialprovider keyring: globs in the
// host (*.example.com), the port must be equal, the path is a prefix, and
// the most specific key comes first.
type keyring struct {
	keys  []string
	creds map[string][]runtime.Auth
}

// dockerConfigEntry is one registry of a .dockercfg / .dockerconfigjson.
type dockerConfigEntry struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	Email         string `json:"email,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// add reads one imagePullSecret (kubernetes.io/dockerconfigjson or
// kubernetes.io/dockercfg) into the keyring.
func (k *keyring) add(s *corev1.Secret) error {
	var entries map[string]dockerConfigEntry
	switch {
	case len(s.Data[corev1.DockerConfigJsonKey]) > 0:
		var cfg struct {
			Auths map[string]dockerConfigEntry `json:"auths"`
		}
		if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
			return fmt.Errorf("secret %s/%s: parse %s: %w", s.Namespace, s.Name, corev1.DockerConfigJsonKey, err)
		}
		entries = cfg.Auths
	case len(s.Data[corev1.DockerConfigKey]) > 0:
		if err := json.Unmarshal(s.Data[corev1.DockerConfigKey], &entries); err != nil {
			return fmt.Errorf("secret %s/%s: parse %s: %w", s.Namespace, s.Name, corev1.DockerConfigKey, err)
		}
	default:
		return fmt.Errorf("secret %s/%s has neither %s nor %s", s.Namespace, s.Name, corev1.DockerConfigJsonKey, corev1.DockerConfigKey)
	}
	if k.creds == nil {
		k.creds = map[string][]runtime.Auth{}
	}
	for reg, e := range entries {
		a := runtime.Auth{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
		if e.Auth != "" {
			b, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return fmt.Errorf("secret %s/%s: registry %s: decode auth: %w", s.Namespace, s.Name, reg, err)
			}
			user, pass, ok := strings.Cut(string(b), ":")
			if !ok {
				return fmt.Errorf("secret %s/%s: registry %s: auth is not user:password", s.Namespace, s.Name, reg)
			}
			a.Username, a.Password = user, pass
		}
		key := keyringKey(reg)
		if _, seen := k.creds[key]; !seen {
			k.keys = append(k.keys, key)
		}
		k.creds[key] = append(k.creds[key], a)
	}
	// Reverse lexical order puts the longer (more specific) of two keys
	// with a common prefix first, like kubelet.
	sort.Sort(sort.Reverse(sort.StringSlice(k.keys)))
	return nil
}

// keyringKey normalizes a dockercfg registry key: no scheme, no /v1/ or
// /v2/ API prefix, Docker Hub's names as docker.io.
func keyringKey(reg string) string {
	reg = strings.TrimPrefix(strings.TrimPrefix(reg, "https://"), "http://")
	host, path, _ := strings.Cut(reg, "/")
	path = strings.TrimPrefix(strings.TrimPrefix(path, "v1/"), "v2/")
	path = strings.TrimPrefix(strings.TrimSuffix(path, "/"), "v1")
	path = strings.TrimPrefix(path, "v2")
	host = dockerHub(host)
	if path == "" {
		return host
	}
	return host + "/" + strings.Trim(path, "/")
}

func dockerHub(host string) string {
	switch host {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "docker.io"
	}
	return host
}

// lookup returns the credentials whose key matches image, most specific
// first; none: pull anonymously.
func (k *keyring) lookup(image string) []runtime.Auth {
	repo := imageRepo(image)
	var out []runtime.Auth
	for _, key := range k.keys {
		if keyMatches(key, repo) {
			out = append(out, k.creds[key]...)
		}
	}
	return out
}

// imageRepo is the registry host and repository path of an image
// reference, without tag or digest: docker.io/library/busybox.
func imageRepo(image string) string {
	ref := runtime.NormalizeRef(image)
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}

// keyMatches is credentialprovider's URLsMatch: host globs part by part,
// equal ports, and the key's path a prefix of the repository's.
func keyMatches(key, repo string) bool {
	kHost, kPath, _ := strings.Cut(key, "/")
	rHost, rPath, _ := strings.Cut(repo, "/")
	kName, kPort := splitPort(kHost)
	rName, rPort := splitPort(rHost)
	if kPort != rPort {
		return false
	}
	kParts, rParts := strings.Split(kName, "."), strings.Split(rName, ".")
	if len(kParts) != len(rParts) {
		return false
	}
	for i := range kParts {
		if ok, err := filepath.Match(kParts[i], rParts[i]); err != nil || !ok {
			return false
		}
	}
	return kPath == "" || rPath == kPath || strings.HasPrefix(rPath, kPath+"/")
}

func splitPort(host string) (string, string) {
	if h, p, err := net.SplitHostPort(host); err == nil {
		return h, p
	}
	return host, ""
}
