package apiserver

import (
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// fakeTokens stands in for the ServiceAccount token verifier: one known
// token for default/app with the UID it was issued for.
type fakeTokens struct{ uid string }

func (f *fakeTokens) verify(tok string, _ []string, _ time.Time) (*ServiceAccountClaims, error) {
	if tok != "app-token" {
		return nil, errors.New("invalid signature")
	}
	return &ServiceAccountClaims{Namespace: "default", Name: "app", UID: f.uid, ID: "jti-1"}, nil
}

func TestAuthenticationAndRBAC(t *testing.T) {
	tokens := &fakeTokens{}
	s := startTestServer(t, func(c *Config) { c.VerifyServiceAccountToken = tokens.verify })
	ctx := t.Context()
	admin, err := kubernetes.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	sa, err := admin.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tokens.uid = string(sa.UID)

	// Bootstrap policy exists.
	for _, name := range []string{"cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user"} {
		if _, err := admin.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("clusterrole %s: %v", name, err)
		}
	}

	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	client := func(token string, as string) kubernetes.Interface {
		cfg := &rest.Config{Host: ts.URL, BearerToken: token}
		cfg.Impersonate.UserName = as
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	app := client("app-token", "")

	if _, err := client("bad-token", "").CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Errorf("bad token = %v, want 401", err)
	}
	_, err = app.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	want := `pods is forbidden: User "system:serviceaccount:default:app" cannot list resource "pods" in API group "" in the namespace "default"`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("list pods as the service account = %v, want %q", err, want)
	}
	if _, err := app.Discovery().ServerVersion(); err != nil {
		t.Errorf("version as the service account: %v", err)
	}
	if _, err := app.Discovery().ServerGroups(); err != nil {
		t.Errorf("discovery as the service account (system:discovery): %v", err)
	}
	ssr, err := app.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ui := ssr.Status.UserInfo; ui.Username != "system:serviceaccount:default:app" || !slices.Contains(ui.Groups, "system:serviceaccounts:default") || ui.UID != string(sa.UID) {
		t.Errorf("whoami = %+v", ui)
	}

	// A RoleBinding to view lets it read, not write, at once.
	_, err = admin.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "app-view"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "app", Namespace: "default"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("list pods with view: %v", err)
	}
	if _, err := app.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list pods in another namespace = %v, want 403", err)
	}
	_, err = app.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `cannot create resource "configmaps" in API group "" in the namespace "default"`) {
		t.Errorf("create configmap with view = %v", err)
	}
	ssar, err := app.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "default", Verb: "get", Resource: "deployments", Group: "apps"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !ssar.Status.Allowed || !strings.Contains(ssar.Status.Reason, `RoleBinding "app-view/default" of ClusterRole "view"`) {
		t.Errorf("SSAR get deployments = %+v", ssar.Status)
	}
	rules, err := app.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: "default"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hasPods := false
	for _, r := range rules.Status.ResourceRules {
		if slices.Contains(r.Resources, "pods") && slices.Contains(r.Verbs, "list") {
			hasPods = true
		}
	}
	if !hasPods || len(rules.Status.NonResourceRules) == 0 {
		t.Errorf("rules review = %+v", rules.Status)
	}

	// SubjectAccessReview for others; system:masters may do anything.
	for _, tc := range []struct {
		user   string
		groups []string
		want   bool
	}{{"bob", nil, false}, {"bob", []string{"system:masters"}, true}, {"system:serviceaccount:default:app", nil, true}} {
		sar, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: tc.user, Groups: tc.groups, ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "default", Verb: "list", Resource: "pods"}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != tc.want {
			t.Errorf("SAR %s %v list pods = %v, want %v", tc.user, tc.groups, sar.Status.Allowed, tc.want)
		}
	}

	// Escalation prevention: a namespace admin may bind what it holds, not more.
	bind := func(cs kubernetes.Interface, name, role string) error {
		_, err := cs.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "dave"}}}, metav1.CreateOptions{})
		return err
	}
	if err := bind(admin, "app-admin", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().RoleBindings("default").Patch(ctx, "app-admin", "application/merge-patch+json",
		[]byte(`{"subjects":[{"kind":"ServiceAccount","name":"app","namespace":"default"}]}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := bind(app, "dave-view", "view"); err != nil {
		t.Errorf("admin binding view: %v", err)
	}
	err = bind(app, "dave-root", "cluster-admin")
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `is attempting to grant RBAC permissions not currently held`) {
		t.Errorf("admin binding cluster-admin = %v, want 403 for escalation", err)
	}
	_, err = app.RbacV1().Roles("default").Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "nodes"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"nodes"}}}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}`) {
		t.Errorf("role with rules the author lacks = %v", err)
	}

	// Impersonation needs the impersonate verb.
	_, err = client("app-token", "carol").CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	want = `users "carol" is forbidden: User "system:serviceaccount:default:app" cannot impersonate resource "users" in API group "" at the cluster scope`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("impersonation without permission = %v, want %q", err, want)
	}
	asSA, err := kubernetes.NewForConfig(&rest.Config{Host: s.LoopbackConfig().Host, Dial: s.LoopbackConfig().Dial,
		Impersonate: rest.ImpersonationConfig{UserName: "system:serviceaccount:default:other"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = asSA.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `User "system:serviceaccount:default:other" cannot list resource "secrets"`) {
		t.Errorf("impersonated service account = %v", err)
	}

	// TokenReview.
	tr, err := admin.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: "app-token"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Status.Authenticated || tr.Status.User.Username != "system:serviceaccount:default:app" || tr.Status.User.Extra["authentication.kubernetes.io/credential-id"][0] != "JTI=jti-1" {
		t.Errorf("token review = %+v", tr.Status)
	}
	tr, err = admin.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: "bad-token"}}, metav1.CreateOptions{})
	if err != nil || tr.Status.Authenticated || tr.Status.Error == "" {
		t.Errorf("token review of a bad token = %+v, %v", tr.Status, err)
	}

	// A token whose ServiceAccount was recreated (new UID) is refused.
	if err := admin.CoreV1().ServiceAccounts("default").Delete(ctx, "app", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Errorf("token of a recreated service account = %v, want 401", err)
	}
}
