package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestVerifyRunAsNonRoot(t *testing.T) {
	yes := true
	root, user := int64(0), int64(1000)
	pod := func(psc *corev1.PodSecurityContext, csc *corev1.SecurityContext) (*corev1.Pod, *corev1.Container) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "u1"},
			Spec: corev1.PodSpec{SecurityContext: psc, Containers: []corev1.Container{{Name: "app", SecurityContext: csc}}}}
		return p, &p.Spec.Containers[0]
	}
	tests := []struct {
		name      string
		psc       *corev1.PodSecurityContext
		csc       *corev1.SecurityContext
		imageUser string
		want      string
	}{
		{"not asked", nil, nil, "", ""},
		{"root image", &corev1.PodSecurityContext{RunAsNonRoot: &yes}, nil, "",
			`container has runAsNonRoot and image will run as root (pod: "web_prod(u1)", container: app)`},
		{"image user 0:0", nil, &corev1.SecurityContext{RunAsNonRoot: &yes}, "0:0",
			`container has runAsNonRoot and image will run as root (pod: "web_prod(u1)", container: app)`},
		{"numeric image user", &corev1.PodSecurityContext{RunAsNonRoot: &yes}, nil, "1000", ""},
		{"named image user", &corev1.PodSecurityContext{RunAsNonRoot: &yes}, nil, "nobody",
			`container has runAsNonRoot and image has non-numeric user (nobody), cannot verify user is non-root (pod: "web_prod(u1)", container: app)`},
		{"runAsUser 0 from the pod", &corev1.PodSecurityContext{RunAsNonRoot: &yes, RunAsUser: &root}, nil, "1000",
			`container's runAsUser breaks non-root policy (pod: "web_prod(u1)", container: app)`},
		{"container's runAsUser wins", &corev1.PodSecurityContext{RunAsNonRoot: &yes, RunAsUser: &root}, &corev1.SecurityContext{RunAsUser: &user}, "", ""},
	}
	for _, tt := range tests {
		p, c := pod(tt.psc, tt.csc)
		uid, name := imageUser(tt.imageUser)
		err := verifyRunAsNonRoot(p, c, effectiveSecurity(p, c), uid, name)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestFsUser(t *testing.T) {
	a, b := int64(1000), int64(2000)
	p := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{RunAsUser: &a},
		Containers: []corev1.Container{{Name: "x"}, {Name: "y"}}}}
	if u := fsUser(p); u == nil || *u != 1000 {
		t.Errorf("shared pod runAsUser: %v", u)
	}
	p.Spec.Containers[1].SecurityContext = &corev1.SecurityContext{RunAsUser: &b}
	if u := fsUser(p); u != nil {
		t.Errorf("containers with different users: %v, want none", *u)
	}
	if u := fsUser(&corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x"}}}}); u != nil {
		t.Errorf("no runAsUser: %v", *u)
	}
}
