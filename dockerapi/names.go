package dockerapi

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// normalizeTag turns a name given to docker into the full reference the
// image store holds, like docker: app → docker.io/library/app:latest. A
// digest reference stays a digest reference.
func normalizeTag(s string) (string, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return "", errBadRequest("invalid reference format: %s", refError(s, err))
	}
	return reference.TagNameOnly(named).String(), nil
}

func refError(s string, err error) string {
	if strings.ToLower(s) != s {
		return "repository name (" + s + ") must be lowercase"
	}
	return err.Error()
}

// danglingPrefix names images built without a tag (BuildKit's
// dangling-name-prefix, as dockerd's containerd store does): they are in the
// store and found by ID, and `docker images` shows them as <none>.
const danglingPrefix = "moby-dangling"

func isDangling(name string) bool { return strings.HasPrefix(name, danglingPrefix+"@") }

// familiar is how docker shows a stored name: docker.io/library/app:1 →
// app:1; ok is false for a dangling or unparsable name.
func familiar(name string) (string, bool) {
	if isDangling(name) {
		return "", false
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return name, false
	}
	return reference.FamiliarString(named), true
}

// repoAndTag splits a familiar tagged name for `docker images`.
func repoAndTag(name string) (repo, tag string) {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "<none>", "<none>"
	}
	repo = reference.FamiliarName(named)
	tag = "<none>"
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	return repo, tag
}

// repoDigest is name@digest for RepoDigests.
func repoDigest(name, dgst string) string {
	if isDangling(name) {
		return ""
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return ""
	}
	return reference.FamiliarName(named) + "@" + dgst
}

// containerID is the 64-hex id the docker CLI shows for a containerd
// container (whose ids are "<pod uid>-<container>" and would all share the
// same 12-character prefix).
func containerID(containerdID string) string {
	sum := sha256.Sum256([]byte(containerdID))
	return hex.EncodeToString(sum[:])
}

// kubeContainerName is the name kubelet's dockershim gave containers, which
// `docker ps` users grep for: k8s_<container>_<pod>_<namespace>_<uid>_<restarts>.
func kubeContainerName(container, pod, namespace, uid string, restarts int) string {
	return fmt.Sprintf("k8s_%s_%s_%s_%s_%d", container, pod, namespace, uid, restarts)
}

// shortID is docker's 12-character form of an id.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
