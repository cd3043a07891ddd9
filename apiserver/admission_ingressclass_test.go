package apiserver

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDefaultIngressClass(t *testing.T) {
	cs := newTestServer(t)
	ctx := t.Context()
	classes := cs.NetworkingV1().IngressClasses()
	ings := cs.NetworkingV1().Ingresses("default")
	pathType := networkingv1.PathTypePrefix
	ingress := func(name string, class *string, annotations map[string]string) *networkingv1.Ingress {
		return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}, Spec: networkingv1.IngressSpec{
			IngressClassName: class,
			Rules: []networkingv1.IngressRule{{Host: "a.test", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &pathType, Backend: networkingv1.IngressBackend{
					Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}},
		}}
	}
	classOf := func(name string, class *string, annotations map[string]string) string {
		t.Helper()
		got, err := ings.Create(ctx, ingress(name, class, annotations), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.IngressClassName == nil {
			return "<nil>"
		}
		return *got.Spec.IngressClassName
	}
	newClass := func(name string, isDefault string) {
		t.Helper()
		ic := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.IngressClassSpec{Controller: "example.com/" + name}}
		if isDefault != "" {
			ic.Annotations = map[string]string{networkingv1.AnnotationIsDefaultIngressClass: isDefault}
		}
		if _, err := classes.Create(ctx, ic, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	if got := classOf("none", nil, nil); got != "<nil>" {
		t.Errorf("no classes: class = %s, want none", got)
	}
	newClass("plain", "")
	newClass("off", "false")
	if got := classOf("nodefault", nil, nil); got != "<nil>" {
		t.Errorf("no default class: class = %s, want none", got)
	}
	newClass("first", "true")
	if got := classOf("one", nil, nil); got != "first" {
		t.Errorf("one default: class = %s, want first", got)
	}
	explicit := "plain"
	if got := classOf("explicit", &explicit, nil); got != "plain" {
		t.Errorf("explicit class = %s, want plain", got)
	}
	empty := ""
	if got := classOf("empty", &empty, nil); got != "" {
		t.Errorf("explicit empty class = %q, want it kept", got)
	}
	if got := classOf("annotated", nil, map[string]string{"kubernetes.io/ingress.class": "other"}); got != "<nil>" {
		t.Errorf("annotated ingress: class = %s, want none", got)
	}
}

func TestDefaultIngressClassNewest(t *testing.T) {
	at := func(name, isDefault string, sec int64) *networkingv1.IngressClass {
		return &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.Unix(sec, 0),
			Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: isDefault}}}
	}
	for _, tc := range []struct {
		name    string
		classes []*networkingv1.IngressClass
		want    string
	}{
		{"none", []*networkingv1.IngressClass{at("a", "false", 1)}, ""},
		{"one", []*networkingv1.IngressClass{at("a", "false", 3), at("b", "true", 1)}, "b"},
		{"newest wins", []*networkingv1.IngressClass{at("old", "true", 1), at("new", "true", 2)}, "new"},
		{"tie: first name", []*networkingv1.IngressClass{at("zeta", "true", 2), at("alpha", "true", 2), at("older", "true", 1)}, "alpha"},
	} {
		got := ""
		if def := defaultIngressClass(tc.classes); def != nil {
			got = def.Name
		}
		if got != tc.want {
			t.Errorf("%s: default class = %q, want %q", tc.name, got, tc.want)
		}
	}
}
