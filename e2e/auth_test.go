//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// TestIntegrationAuthorization checks RBAC with the real kubectl: the admin
// may do anything, a ServiceAccount (through impersonation) only what its
// bindings allow, with kube-apiserver's 403 message.
func TestIntegrationAuthorization(t *testing.T) {
	l := theLab
	const p = "e2e-auth"
	l.startProfile(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	const sa = "system:serviceaccount:default:default"
	canI := func(want string, args ...string) {
		t.Helper()
		r := l.kubectlResult(t, p, append([]string{"auth", "can-i"}, args...)...)
		if got := strings.TrimSpace(r.stdout); got != want || (want == "yes") != (r.code == 0) {
			t.Errorf("kubectl auth can-i %s = %q (exit %d), want %q", strings.Join(args, " "), got, r.code, want)
		}
	}

	canI("yes", "create", "deployments")
	canI("yes", "*", "*")
	who := k("auth", "whoami")
	if !strings.Contains(who, "system:masters") || !strings.Contains(who, "Username") {
		t.Errorf("auth whoami:\n%s", who)
	}
	for _, role := range []string{"cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user", "system:public-info-viewer"} {
		k("get", "clusterrole", role)
	}
	if out := k("get", "clusterrolebinding", "cluster-admin", "-o", "wide"); !strings.Contains(out, "ClusterRole/cluster-admin") || !strings.Contains(out, "system:masters") {
		t.Errorf("get clusterrolebinding cluster-admin -o wide:\n%s", out)
	}

	canI("no", "list", "pods", "--as="+sa)
	r := l.kubectlResult(t, p, "get", "pods", "--as="+sa)
	want := `Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:default:default" cannot list resource "pods" in API group "" in the namespace "default"`
	if r.code == 0 || strings.TrimSpace(r.stderr) != want {
		t.Errorf("get pods as the service account: %s\nwant stderr %q", r, want)
	}
	if out := k("auth", "whoami", "--as="+sa); !strings.Contains(out, sa) || !strings.Contains(out, "system:serviceaccounts:default") {
		t.Errorf("auth whoami as the service account:\n%s", out)
	}

	k("create", "rolebinding", "default-view", "--clusterrole=view", "--serviceaccount=default:default")
	canI("yes", "list", "pods", "--as="+sa)
	canI("yes", "get", "deployments.apps", "--as="+sa)
	canI("no", "create", "pods", "--as="+sa)
	canI("no", "list", "pods", "-n", "kube-system", "--as="+sa)
	canI("no", "get", "secrets", "--as="+sa)
	if out := k("get", "pods", "--as="+sa); out != "" {
		t.Errorf("get pods as the service account with view: %q", out)
	}
	if out := k("auth", "can-i", "--list", "--as="+sa); !strings.Contains(out, "pods") || !strings.Contains(out, "[get list watch]") {
		t.Errorf("auth can-i --list:\n%s", out)
	}
	r = l.kubectlResult(t, p, "create", "configmap", "x", "--from-literal=a=b", "--as="+sa)
	if r.code == 0 || !strings.Contains(r.stderr, `configmaps is forbidden: User "system:serviceaccount:default:default" cannot create resource "configmaps" in API group "" in the namespace "default"`) {
		t.Errorf("create configmap with view: %s", r)
	}
	k("delete", "rolebinding", "default-view")
	canI("no", "list", "pods", "--as="+sa)
}
