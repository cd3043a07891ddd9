//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nanokube/nanokube/hack/testimages"
)

// TestIntegrationImageGC: with kubelet's image GC thresholds set low
// (--extra-config=kubelet.image-gc-high-threshold=1,…-low-threshold=0,
// so every run wants to free more than it can), images younger than the
// minimum age stay, then the unused ones go (never used, and used by a
// pod that was deleted) while the one a running pod uses stays, in
// `nanokube image ls` and node.status.images; the node gets kubelet's
// FreeDiskSpaceFailed and, after repeated failures, ImageGCFailed events.
func TestIntegrationImageGC(t *testing.T) {
	l := theLab
	const p = "e2e-imagegc"
	const minAge = 20 * time.Second
	l.startProfile(t, p,
		"--extra-config", "kubelet.image-gc-high-threshold=1",
		"--extra-config", "kubelet.image-gc-low-threshold=0",
		"--extra-config", "kubelet.image-minimum-gc-age="+minAge.String(),
		"--extra-config", "kubelet.image-gc-period=1s")
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	k("wait", "--for=condition=Ready", "node/"+p, "--timeout=60s")

	const used, deleted, never = "nanokube.local/gc-used:1", "nanokube.local/gc-deleted:1", "nanokube.local/gc-never:1"
	dir := t.TempDir()
	for _, ref := range []string{used, deleted, never} {
		path := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := testimages.BusyboxTar(f, ref); err != nil {
			t.Fatal(err)
		}
		f.Close()
		l.nanokube(t, "image", "load", "-p", p, path)
	}
	loaded := time.Now()
	pod := func(name, image string) {
		t.Helper()
		k("run", name, "--image="+image, "--image-pull-policy=Never", "--restart=Never", "--overrides",
			`{"spec":{"terminationGracePeriodSeconds":0}}`, "--command", "--", "sleep", "3600")
	}
	pod("keep", used)
	pod("gone", deleted)
	k("wait", "--for=condition=Ready", "pod/keep", "pod/gone", "--timeout=60s")
	k("delete", "pod", "gone", "--wait=true")

	imageLs := func() string { return l.nanokube(t, "image", "ls", "-p", p).stdout }
	// The GC runs every second over the high threshold, but spares images
	// younger than the minimum age.
	if out := imageLs(); time.Since(loaded) < minAge/2 {
		for _, ref := range []string{used, deleted, never} {
			if !strings.Contains(out, "| "+strings.Split(ref, ":")[0]+" ") {
				t.Errorf("%s was removed before its minimum GC age:\n%s", ref, out)
			}
		}
	} else {
		t.Logf("the pods took %s to run: minimum age not checked", time.Since(loaded).Round(time.Second))
	}

	eventually(t, "unused images removed by image GC", minAge+30*time.Second, func() (bool, string) {
		out := imageLs()
		return !strings.Contains(out, "gc-deleted") && !strings.Contains(out, "gc-never"), out
	})
	if out := imageLs(); !strings.Contains(out, "| nanokube.local/gc-used ") {
		t.Errorf("the image of a running pod was removed:\n%s", out)
	}
	eventually(t, "node.status.images follows the GC", 20*time.Second, func() (bool, string) {
		out := k("get", "node", p, "-o", "jsonpath={.status.images}")
		return strings.Contains(out, used) && !strings.Contains(out, deleted) && !strings.Contains(out, never), out
	})
	if phase := k("get", "pod", "keep", "-o", "jsonpath={.status.phase}"); phase != "Running" {
		t.Errorf("pod keep is %s after image GC", phase)
	}
	// The removed image is really gone: Never cannot start it.
	pod("again", deleted)
	k("wait", "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}=ErrImageNeverPull", "pod/again", "--timeout=30s")

	eventually(t, "kubelet's image GC events on the node", 20*time.Second, func() (bool, string) {
		out := k("get", "events", "-A", "--field-selector", "involvedObject.kind=Node,involvedObject.name="+p,
			"-o", "custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message")
		ok := true
		for _, reason := range []string{"FreeDiskSpaceFailed", "ImageGCFailed"} {
			re := regexp.MustCompile(`(?m)^Warning\s+` + reason + `\s+Failed to garbage collect required amount of images\. Attempted to free \d+ bytes, but only found \d+ bytes eligible to free\.$`)
			ok = ok && re.MatchString(out)
		}
		return ok, out
	})
}
