//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nanokube/nanokube/hack/testimages"
)

// TestIntegrationImages: pods pull from a registry the test runs on
// loopback in the lab (basic auth) with imagePullSecrets from the pod and
// from its ServiceAccount; without credentials a pod goes ErrImagePull →
// ImagePullBackOff (and Always does not fall back to the local copy);
// Never with a missing image is ErrImageNeverPull; an unreachable registry
// fails at once; node.status.images lists the pulled image; one shim runs
// per pod; and the image CLI round-trips (tag, save, rm, load, ls, pull).
func TestIntegrationImages(t *testing.T) {
	l := theLab
	const p = "e2e-images"
	// The registry listens on an address of the lab that is not loopback,
	// so plain HTTP to it needs --insecure-registry (loopback registries
	// are insecure anyway, as in Docker).
	const regIP = "10.250.0.1"
	labAddress(t, regIP)
	reg := startRegistry(t, regIP, "e2e", "s3cret")
	var archive bytes.Buffer
	if err := testimages.BusyboxTar(&archive, "nanokube.local/pushed:v1"); err != nil {
		t.Fatal(err)
	}
	reg.push(t, archive.Bytes(), "team/app", "v1")
	reg.push(t, archive.Bytes(), "public/app", "v1")
	ref := reg.addr + "/team/app:v1"

	l.startProfile(t, p, "--insecure-registry", reg.addr)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	k("wait", "--for=condition=Ready", "node/"+p, "--timeout=60s")
	k("create", "secret", "docker-registry", "regcred", "--docker-server="+reg.addr, "--docker-username=e2e", "--docker-password=s3cret")

	pod := func(name, image, policy string, secrets bool, containers ...string) string {
		if len(containers) == 0 {
			containers = []string{"c"}
		}
		m := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\nspec:\n  terminationGracePeriodSeconds: 0\n"
		if secrets {
			m += "  imagePullSecrets: [{name: regcred}]\n"
		}
		m += "  containers:\n"
		for _, c := range containers {
			m += "  - {name: " + c + ", image: \"" + image + "\", imagePullPolicy: " + policy + ", command: [sleep, \"3600\"]}\n"
		}
		path := filepath.Join(t.TempDir(), name+".yaml")
		os.WriteFile(path, []byte(m), 0o644)
		k("apply", "-f", path)
		return name
	}
	events := func(name string) string {
		return k("get", "events", "--field-selector", "involvedObject.name="+name, "-o", "custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message")
	}
	waiting := func(name, reason string, timeout time.Duration) string {
		t.Helper()
		k("wait", "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}="+reason, "pod/"+name, "--timeout="+timeout.String())
		return k("get", "pod", name, "-o", "jsonpath={.status.containerStatuses[0].state.waiting.message}")
	}

	// With the pod's secret the image is pulled with kubelet's events.
	pod("withsecret", ref, "IfNotPresent", true)
	k("wait", "--for=condition=Ready", "pod/withsecret", "--timeout=60s")
	ev := events("withsecret")
	for _, want := range []string{`Pulling image "` + ref + `"`, `Successfully pulled image "` + ref + `" in `, " including waiting). Image size: ", " bytes."} {
		if !strings.Contains(ev, want) {
			t.Errorf("events of withsecret lack %q:\n%s", want, ev)
		}
	}
	// Present now: a second pod does not pull.
	pod("present", ref, "IfNotPresent", false)
	k("wait", "--for=condition=Ready", "pod/present", "--timeout=60s")
	if ev := events("present"); !strings.Contains(ev, `Container image "`+ref+`" already present on machine`) || strings.Contains(ev, "Pulling") {
		t.Errorf("events of present:\n%s", ev)
	}

	// Without credentials and policy Always: the pull fails, the local
	// copy is not used, and the back-off follows.
	pod("nosecret", ref, "Always", false)
	msg := waiting("nosecret", "ImagePullBackOff", 30*time.Second)
	if !strings.Contains(msg, `Back-off pulling image "`+ref+`": ErrImagePull: Failed to pull image "`+ref+`": `) {
		t.Errorf("ImagePullBackOff message: %q", msg)
	}
	ev = events("nosecret")
	for _, want := range []string{`Failed to pull image "` + ref + `"`, "Error: ErrImagePull", `Back-off pulling image "` + ref + `"`, "Error: ImagePullBackOff"} {
		if !strings.Contains(ev, want) {
			t.Errorf("events of nosecret lack %q:\n%s", want, ev)
		}
	}
	if out := k("get", "pod", "nosecret", "--no-headers"); !strings.Contains(out, "ImagePullBackOff") || !strings.Contains(out, "0/1") {
		t.Errorf("kubectl get pod nosecret: %q", out)
	}

	// The ServiceAccount's imagePullSecrets reach its pods.
	k("patch", "serviceaccount", "default", "-p", `{"imagePullSecrets":[{"name":"regcred"}]}`)
	pod("viasa", ref, "Always", false)
	k("wait", "--for=condition=Ready", "pod/viasa", "--timeout=60s")
	if out := k("get", "pod", "viasa", "-o", "jsonpath={.spec.imagePullSecrets[*].name}"); out != "regcred" {
		t.Errorf("viasa pull secrets = %q", out)
	}
	k("patch", "serviceaccount", "default", "--type=json", "-p", `[{"op":"remove","path":"/imagePullSecrets"}]`)

	// Never with a missing image.
	pod("never", "nanokube.local/missing:1", "Never", false)
	if msg := waiting("never", "ErrImageNeverPull", 30*time.Second); msg != `Container image "nanokube.local/missing:1" is not present with pull policy of Never` {
		t.Errorf("ErrImageNeverPull message: %q", msg)
	}

	// An unreachable registry fails fast with the cause.
	begin := time.Now()
	pod("unreachable", "127.0.0.1:1/nothing:v1", "IfNotPresent", false)
	if msg := waiting("unreachable", "ImagePullBackOff", 20*time.Second); !strings.Contains(msg, "connection refused") {
		t.Errorf("unreachable registry: %q", msg)
	}
	t.Logf("unreachable registry failed after %s", time.Since(begin).Round(time.Millisecond))

	// node.status.images follows the image store.
	eventually(t, "node.status.images lists "+ref, 20*time.Second, func() (bool, string) {
		out := k("get", "node", p, "-o", "json")
		var n struct {
			Status struct {
				Images []struct {
					Names     []string `json:"names"`
					SizeBytes int64    `json:"sizeBytes"`
				} `json:"images"`
			} `json:"status"`
		}
		json.Unmarshal([]byte(out), &n)
		for _, i := range n.Status.Images {
			for _, name := range i.Names {
				if name == ref && i.SizeBytes > 0 {
					return true, ""
				}
			}
		}
		return false, out
	})

	// One shim per pod: a two-container pod has one shim.
	pod("two", ref, "IfNotPresent", false, "a", "b")
	k("wait", "--for=condition=Ready", "pod/two", "--timeout=60s")
	uid := k("get", "pod", "two", "-o", "jsonpath={.metadata.uid}")
	if n := shimsOf(uid); n != 1 {
		t.Errorf("pod two (2 containers) has %d shims, want 1", n)
	}

	// CLI round trip: tag, save, rm, load, ls; pull from a public repository.
	copyRef := "nanokube.local/copy:saved"
	l.nanokube(t, "image", "tag", "-p", p, ref, copyRef)
	saved := filepath.Join(t.TempDir(), "copy.tar")
	l.nanokube(t, "image", "save", "-p", p, copyRef, saved)
	l.nanokube(t, "image", "rm", "-p", p, copyRef)
	if out := l.nanokube(t, "image", "ls", "-p", p).stdout; strings.Contains(out, "nanokube.local/copy") {
		t.Errorf("image ls after rm still lists the copy:\n%s", out)
	}
	if out := l.nanokube(t, "image", "load", "-p", p, saved).stdout; !strings.Contains(out, "Loaded image: docker.io/"+copyRef) && !strings.Contains(out, "Loaded image: "+copyRef) {
		t.Errorf("image load: %q", out)
	}
	out := l.nanokube(t, "image", "ls", "-p", p).stdout
	for _, want := range []string{" IMAGE ", " TAG ", " IMAGE ID ", " SIZE ", "| nanokube.local/copy ", "| saved ", "| " + reg.addr + "/team/app"} {
		if !strings.Contains(out, want) {
			t.Errorf("image ls lacks %q:\n%s", want, out)
		}
	}
	// Without --insecure-registry the pull speaks HTTPS to a plain HTTP
	// registry; the flag (or the profile's setting) makes it work.
	plain := startRegistry(t, regIP, "e2e", "s3cret")
	plain.push(t, archive.Bytes(), "public/other", "v2")
	if r := l.nanokubeResult(t, "image", "pull", "-p", p, plain.addr+"/public/other:v2"); r.code == 0 || !strings.Contains(r.stderr, "HTTP response to HTTPS client") {
		t.Errorf("image pull from an insecure registry without --insecure-registry: %s", r)
	}
	if out := l.nanokube(t, "image", "pull", "-p", p, "--insecure-registry", plain.addr, plain.addr+"/public/other:v2").stdout; !strings.Contains(out, "Pulled image: "+plain.addr+"/public/other:v2") {
		t.Errorf("image pull --insecure-registry: %q", out)
	}
	if out := l.nanokube(t, "image", "pull", "-p", p, reg.addr+"/public/app:v1").stdout; !strings.Contains(out, "Pulled image: "+reg.addr+"/public/app:v1") {
		t.Errorf("image pull: %q", out)
	}
	if r := l.nanokubeResult(t, "image", "pull", "-p", p, ref); r.code == 0 || !strings.Contains(r.stderr, "pull "+ref) {
		t.Errorf("image pull without credentials: %s", r)
	}
}

// shimsOf counts the containerd shims serving a pod's containers.
func shimsOf(uid string) int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte("containerd-shim")) && bytes.Contains(b, []byte(uid)) {
			n++
		}
	}
	return n
}
