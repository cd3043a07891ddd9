package controller

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestSurgeAndUnavailable(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	num := func(n int) *intstr.IntOrString { v := intstr.FromInt32(int32(n)); return &v }
	cases := []struct {
		replicas       int32
		surge, unavail *intstr.IntOrString
		wantS, wantU   int32
	}{
		{10, pct("25%"), pct("25%"), 3, 2}, // surge rounds up, unavailable down
		{1, pct("25%"), pct("25%"), 1, 0},
		{3, num(0), num(0), 0, 1}, // both zero: one may be unavailable
		{4, num(2), pct("50%"), 2, 2},
	}
	for _, c := range cases {
		d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Strategy: appsv1.DeploymentStrategy{
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: c.surge, MaxUnavailable: c.unavail}}}}
		s, u := surgeAndUnavailable(d, c.replicas)
		if s != c.wantS || u != c.wantU {
			t.Errorf("replicas %d surge %v unavailable %v: got %d/%d, want %d/%d", c.replicas, c.surge, c.unavail, s, u, c.wantS, c.wantU)
		}
	}
}

func TestTemplateHashIsStable(t *testing.T) {
	d := &appsv1.Deployment{}
	d.Spec.Template.Labels = map[string]string{"app": "web"}
	h1 := templateHash(&d.Spec.Template, nil)
	h2 := templateHash(d.Spec.Template.DeepCopy(), nil)
	if h1 != h2 || h1 == "" {
		t.Fatalf("hash of equal templates differs: %q %q", h1, h2)
	}
	d.Spec.Template.Labels["app"] = "other"
	if templateHash(&d.Spec.Template, nil) == h1 {
		t.Errorf("hash ignores a template change")
	}
	one := int32(1)
	if templateHash(&d.Spec.Template, &one) == templateHash(&d.Spec.Template, nil) {
		t.Errorf("collision count does not change the hash")
	}
}
