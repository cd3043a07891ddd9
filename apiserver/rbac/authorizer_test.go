package rbac

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRuleAllows(t *testing.T) {
	for _, tc := range []struct {
		rule rbacv1.PolicyRule
		a    Attributes
		want bool
	}{
		{r1("get", "", "pods"), res("get", "", "pods", ""), true},
		{r1("get", "", "pods"), res("list", "", "pods", ""), false},
		{r1("get", "", "pods"), res("get", "", "pods", "log"), false},
		{r1("get", "", "pods/*"), res("get", "", "pods", "log"), true},
		{r1("get", "", "*/scale"), res("get", "apps", "deployments", "scale"), false},
		{r1("get", "apps", "*/scale"), res("get", "apps", "deployments", "scale"), true},
		{r1("*", "*", "*"), res("delete", "batch", "jobs", ""), true},
		{rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"a"}}, Attributes{Verb: "get", ResourceRequest: true, Resource: "configmaps", Name: "b"}, false},
		{rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/apis/*"}}, Attributes{Verb: "get", Path: "/apis/apps/v1"}, true},
		{rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/api"}}, Attributes{Verb: "get", Path: "/api/v1"}, false},
	} {
		if got := RuleAllows(tc.a, &tc.rule); got != tc.want {
			t.Errorf("rule %+v on %+v = %v, want %v", tc.rule, tc.a, got, tc.want)
		}
	}
}

func r1(verb, group, resource string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: []string{verb}, APIGroups: []string{group}, Resources: []string{resource}}
}

func res(verb, group, resource, sub string) Attributes {
	return Attributes{Verb: verb, ResourceRequest: true, APIGroup: group, Resource: resource, Subresource: sub, Namespace: "ns"}
}

func TestCacheAggregationBindingsAndOrder(t *testing.T) {
	c := NewCache()
	rev := int64(0)
	put := func(obj interface {
		metav1.Object
	}) {
		rev++
		switch o := obj.(type) {
		case *rbacv1.ClusterRole:
			c.Put(o, rev)
		case *rbacv1.ClusterRoleBinding:
			c.Put(o, rev)
		case *rbacv1.RoleBinding:
			c.Put(o, rev)
		}
	}
	for _, r := range ClusterRoles() {
		put(r)
	}
	for _, b := range ClusterRoleBindings() {
		put(b)
	}
	// A CRD's role joins view through its aggregation label.
	put(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "crontabs-view", Labels: map[string]string{aggregateToView: "true"}},
		Rules: []rbacv1.PolicyRule{r1("get", "stable.example.com", "crontabs")}})
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ns"}, RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "admin"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "app"}}}
	put(rb)
	sa := User{Name: "system:serviceaccount:ns:app", Groups: []string{"system:serviceaccounts", "system:authenticated"}}
	if ok, reason := c.Authorize(sa, res("get", "stable.example.com", "crontabs", "")); !ok || reason != `RBAC: allowed by RoleBinding "b/ns" of ClusterRole "admin" to ServiceAccount "app/ns"` {
		t.Errorf("admin through view aggregation = %v %q", ok, reason)
	}
	if ok, _ := c.Authorize(sa, res("create", "rbac.authorization.k8s.io", "rolebindings", "")); !ok {
		t.Error("admin may not create rolebindings")
	}
	if ok, _ := c.Authorize(sa, Attributes{Verb: "get", Path: "/apis"}); !ok {
		t.Error("an authenticated user may not read discovery")
	}
	if ok, _ := c.Authorize(User{Name: "system:anonymous", Groups: []string{"system:unauthenticated"}}, Attributes{Verb: "get", Path: "/apis"}); ok {
		t.Error("anonymous may read discovery")
	}
	// An older revision arriving late (the watch after a write-through) is ignored.
	c.Delete(rb, rev+1)
	c.Put(rb, rev)
	if ok, _ := c.Authorize(sa, res("get", "", "pods", "")); ok {
		t.Error("a stale put resurrected a deleted binding")
	}
}
