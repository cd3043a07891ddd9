package apiserver

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TestPatchDirectivesFieldValidationAndDryRun: the strategic merge
// directives, the three fieldValidation levels and dryRun=All on
// patch and delete behave as on kube-apiserver.
func TestPatchDirectivesFieldValidationAndDryRun(t *testing.T) {
	s := startTestServer(t)
	cs, err := kubernetes.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	pods := cs.CoreV1().Pods("default")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Finalizers: []string{"a.test/x", "b.test/y"}}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "a", Image: "x"}, {Name: "b", Image: "y"}, {Name: "c", Image: "z"}}}}
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	names := func(p *corev1.Pod) string {
		var out []string
		for _, c := range p.Spec.Containers {
			out = append(out, c.Name+"="+c.Image)
		}
		return strings.Join(out, ",") + " " + strings.Join(p.Finalizers, ",")
	}
	for _, c := range []struct{ patch, want string }{
		{`{"spec":{"containers":[{"name":"b","$patch":"delete"}]}}`, "a=x,c=z a.test/x,b.test/y"},
		{`{"spec":{"$setElementOrder/containers":[{"name":"c"},{"name":"a"}],"containers":[{"name":"a","image":"x3"}]}}`, "c=z,a=x3 a.test/x,b.test/y"},
		{`{"metadata":{"$deleteFromPrimitiveList/finalizers":["a.test/x"]}}`, "c=z,a=x3 b.test/y"},
	} {
		got, err := pods.Patch(ctx, "p", types.StrategicMergePatchType, []byte(c.patch), metav1.PatchOptions{})
		if err != nil {
			t.Errorf("patch %s: %v", c.patch, err)
			continue
		}
		if names(got) != c.want {
			t.Errorf("after %s: %s, want %s", c.patch, names(got), c.want)
		}
	}
	// $retainKeys drops what it does not list (a Deployment strategy's
	// rollingUpdate when the type becomes Recreate, as kubectl apply does).
	dep := []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"x"}]}}}}`)
	if err := cs.AppsV1().RESTClient().Post().Namespace("default").Resource("deployments").Body(dep).SetHeader("Content-Type", "application/json").Do(ctx).Error(); err != nil {
		t.Fatal(err)
	}
	d, err := cs.AppsV1().Deployments("default").Patch(ctx, "d", types.StrategicMergePatchType, []byte(`{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}`), metav1.PatchOptions{})
	if err != nil || d.Spec.Strategy.Type != "Recreate" || d.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("$retainKeys: %+v, %v", d.Spec.Strategy, err)
	}

	// fieldValidation: Strict fails with the field, Warn stores with a
	// warning, Ignore stores silently.
	unknown := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s"},"datta":{"a":"b"}}`)
	post := func(level, name string) (rest.Result, []string) {
		var warnings []string
		cfg := rest.CopyConfig(s.LoopbackConfig())
		cfg.WarningHandler = warningCollector{&warnings}
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := c.CoreV1().RESTClient().Post().Namespace("default").Resource("configmaps").Param("fieldValidation", level).
			Body([]byte(fmt.Sprintf(string(unknown), name))).SetHeader("Content-Type", "application/json").Do(ctx)
		return r, warnings
	}
	if r, _ := post("Strict", "strict"); !apierrors.IsBadRequest(r.Error()) || !strings.Contains(r.Error().Error(), `strict decoding error: unknown field "datta"`) {
		t.Errorf("Strict: %v", r.Error())
	}
	if r, w := post("Warn", "warn"); r.Error() != nil || len(w) != 1 || w[0] != `unknown field "datta"` {
		t.Errorf("Warn: %v, warnings %q", r.Error(), w)
	}
	if r, w := post("Ignore", "ignore"); r.Error() != nil || len(w) != 0 {
		t.Errorf("Ignore: %v, warnings %q", r.Error(), w)
	}

	// dryRun=All: the answer shows the change, the store keeps the old.
	got, err := pods.Patch(ctx, "p", types.MergePatchType, []byte(`{"metadata":{"labels":{"dry":"run"}}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil || got.Labels["dry"] != "run" {
		t.Errorf("dry-run patch answer: %v, %v", got.Labels, err)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "warn", metav1.GetOptions{}); err != nil {
		t.Fatalf("the object created with fieldValidation=Warn: %v", err)
	}
	if err := cs.CoreV1().ConfigMaps("default").Delete(ctx, "warn", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if live, err := pods.Get(ctx, "p", metav1.GetOptions{}); err != nil || live.Labels["dry"] != "" {
		t.Errorf("a dry-run patch was stored: %v, %v", live.Labels, err)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "warn", metav1.GetOptions{}); err != nil {
		t.Errorf("a dry-run delete removed the object: %v", err)
	}
}

// warningCollector keeps the Warning headers a client receives.
type warningCollector struct{ into *[]string }

func (w warningCollector) HandleWarningHeader(_ int, _ string, text string) {
	*w.into = append(*w.into, text)
}
