package dockerapi

import (
	"strings"
	"testing"
)

func TestNormalizeTag(t *testing.T) {
	for in, want := range map[string]string{
		"app":                         "docker.io/library/app:latest",
		"hello:1":                     "docker.io/library/hello:1",
		"user/app:v2":                 "docker.io/user/app:v2",
		"nanokube.local/busybox:test": "nanokube.local/busybox:test",
		"localhost:5000/app":          "localhost:5000/app:latest",
		"docker.io/library/app:1":     "docker.io/library/app:1",
	} {
		got, err := normalizeTag(in)
		if err != nil || got != want {
			t.Errorf("normalizeTag(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"App:1":  "invalid reference format: repository name (App:1) must be lowercase",
		"a b":    "invalid reference format",
		"app:a:": "invalid reference format",
	} {
		_, err := normalizeTag(in)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("normalizeTag(%q) = %v, want an error starting %q", in, err, want)
		}
	}
}

func TestFamiliarNames(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io/library/hello:1":   "hello:1",
		"docker.io/user/app:latest":   "user/app:latest",
		"nanokube.local/busybox:test": "nanokube.local/busybox:test",
	} {
		if got, ok := familiar(in); !ok || got != want {
			t.Errorf("familiar(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if f, ok := familiar("moby-dangling@sha256:abc"); ok || f != "" {
		t.Errorf("a dangling name shows as %q", f)
	}
	if d := repoDigest("moby-dangling@sha256:abc", "sha256:abc"); d != "" {
		t.Errorf("a dangling name has repo digest %q", d)
	}
	if repo, tag := repoAndTag("docker.io/library/hello:1"); repo != "hello" || tag != "1" {
		t.Errorf("repoAndTag = %q %q", repo, tag)
	}
	if got := repoDigest("docker.io/library/hello:1", "sha256:abc"); got != "hello@sha256:abc" {
		t.Errorf("repoDigest = %q", got)
	}
}

func TestContainerNames(t *testing.T) {
	a, b := containerID("uid-1-app"), containerID("uid-1-sidecar")
	if len(a) != 64 || a == b || shortID(a) == shortID(b) {
		t.Errorf("ids of two containers of one pod: %q %q", a, b)
	}
	if got := kubeContainerName("app", "web-5d8f", "default", "1234-abcd", 2); got != "k8s_app_web-5d8f_default_1234-abcd_2" {
		t.Errorf("kubeContainerName = %q", got)
	}
	if got := shortID("sha256:0123456789abcdef0123"); got != "0123456789ab" {
		t.Errorf("shortID = %q", got)
	}
}

func TestParseFilters(t *testing.T) {
	f, err := parseFilters(`{"reference":{"hello":true,"off":false},"label":{"a=b":true}}`)
	if err != nil || len(f["reference"]) != 1 || f["reference"][0] != "hello" || f["label"][0] != "a=b" {
		t.Fatalf("parseFilters = %v, %v", f, err)
	}
	if old, err := parseFilters(`{"status":["running"]}`); err != nil || old["status"][0] != "running" {
		t.Errorf("old filter format = %v, %v", old, err)
	}
	if _, err := parseFilters(`{bad`); err == nil {
		t.Error("bad filters parsed")
	}
	if err := f.only("reference"); err == nil || err.Error() != "invalid filter 'label'" {
		t.Errorf("only = %v", err)
	}
	if !f.matchLabels(map[string]string{"a": "b"}) || f.matchLabels(map[string]string{"a": "c"}) || f.matchLabels(nil) {
		t.Error("label filter a=b matches wrongly")
	}
	got := matchReferences([]string{"hello:1", "hello:2", "other:1", "nanokube.local/busybox:test"}, []string{"hello", "*/busybox:*"})
	if strings.Join(got, ",") != "hello:1,hello:2,nanokube.local/busybox:test" {
		t.Errorf("matchReferences = %v", got)
	}
}
