package agent

import (
	"net"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/nanokube/nanokube/network"
	rtfake "github.com/nanokube/nanokube/runtime/fake"
)

func testAgentWithFakeRuntime(t *testing.T) (*Agent, *rtfake.Runtime, *record.FakeRecorder) {
	t.Helper()
	_, cidr, _ := net.ParseCIDR("10.244.0.0/24")
	rt := rtfake.New()
	a, err := New(Config{NodeName: "n1", Client: fake.NewClientset(), Runtime: rt, PodNet: network.PodNet{CIDR: cidr}, RootDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.queue.ShutDown)
	rec := record.NewFakeRecorder(100)
	a.recorder = rec
	return a, rt, rec
}

func drain(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestEnsureImageFollowsKubeletPolicyAndBackoff(t *testing.T) {
	a, rt, rec := testAgentWithFakeRuntime(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "u1"}}
	st := a.stateOf(pod)
	ctx := t.Context()

	// Present with IfNotPresent: no pull.
	c := corev1.Container{Name: "c", Image: "app:1", ImagePullPolicy: corev1.PullIfNotPresent}
	if err := a.ensureImage(ctx, pod, st, c); err != nil {
		t.Fatal(err)
	}
	if ev := drain(rec); len(ev) != 1 || ev[0] != `Normal Pulled Container image "app:1" already present on machine` {
		t.Errorf("events %q", ev)
	}

	// Always (the default for no tag): pulled, with kubelet's text.
	c = corev1.Container{Name: "c", Image: "app"}
	if err := a.ensureImage(ctx, pod, st, c); err != nil {
		t.Fatal(err)
	}
	ev := drain(rec)
	if len(ev) != 2 || ev[0] != `Normal Pulling Pulling image "app"` || !strings.HasPrefix(ev[1], `Normal Pulled Successfully pulled image "app" in `) ||
		!strings.Contains(ev[1], " including waiting). Image size: 1048576 bytes.") {
		t.Errorf("events %q", ev)
	}

	// Missing with Never.
	rt.SetImageMissing("gone:1", true)
	c = corev1.Container{Name: "c", Image: "gone:1", ImagePullPolicy: corev1.PullNever}
	if err := a.ensureImage(ctx, pod, st, c); err == nil {
		t.Fatal("Never with a missing image started")
	}
	if w := st.waiting["c"]; w == nil || w.Reason != "ErrImageNeverPull" || w.Message != `Container image "gone:1" is not present with pull policy of Never` {
		t.Errorf("waiting %+v", w)
	}
	drain(rec)

	// A failing pull: ErrImagePull, then ImagePullBackOff without a new pull.
	c.ImagePullPolicy = corev1.PullIfNotPresent
	if err := a.ensureImage(ctx, pod, st, c); err == nil {
		t.Fatal("a failed pull started the container")
	}
	if w := st.waiting["c"]; w == nil || w.Reason != "ErrImagePull" || !strings.HasPrefix(w.Message, `Failed to pull image "gone:1": `) {
		t.Errorf("waiting %+v", w)
	}
	ev = drain(rec)
	if len(ev) != 3 || ev[0] != `Normal Pulling Pulling image "gone:1"` || ev[2] != "Warning Failed Error: ErrImagePull" {
		t.Errorf("events %q", ev)
	}
	if err := a.ensureImage(ctx, pod, st, c); err == nil {
		t.Fatal("started during the back-off")
	}
	if w := st.waiting["c"]; w == nil || w.Reason != "ImagePullBackOff" || !strings.HasPrefix(w.Message, `Back-off pulling image "gone:1": ErrImagePull: Failed to pull image "gone:1": `) {
		t.Errorf("waiting %+v", w)
	}
	if ev := drain(rec); len(ev) != 2 || ev[0] != `Normal BackOff Back-off pulling image "gone:1"` || ev[1] != "Warning Failed Error: ImagePullBackOff" {
		t.Errorf("events %q", ev)
	}
}
