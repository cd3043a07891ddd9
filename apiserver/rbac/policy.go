package rbac

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	read      = []string{"get", "list", "watch"}
	write     = []string{"create", "delete", "deletecollection", "patch", "update"}
	readWrite = append(append([]string{}, read...), write...)
)

func rule(verbs []string, group string, resources ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: []string{group}, Resources: resources}
}

func nonResource(verbs []string, urls ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, NonResourceURLs: urls}
}

func bootstrapMeta(name string, labels map[string]string) metav1.ObjectMeta {
	l := map[string]string{"kubernetes.io/bootstrapping": "rbac-defaults"}
	for k, v := range labels {
		l[k] = v
	}
	return metav1.ObjectMeta{Name: name, Labels: l, Annotations: map[string]string{"rbac.authorization.kubernetes.io/autoupdate": "true"}}
}

const (
	aggregateToAdmin = "rbac.authorization.k8s.io/aggregate-to-admin"
	aggregateToEdit  = "rbac.authorization.k8s.io/aggregate-to-edit"
	aggregateToView  = "rbac.authorization.k8s.io/aggregate-to-view"
)

func aggregation(label string) *rbacv1.AggregationRule {
	return &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{label: "true"}}}}
}

// ClusterRoles are the cluster roles kube-apiserver bootstraps that matter
// to users and in-cluster clients: cluster-admin, the aggregated admin,
// edit and view, and the system roles every identity is bound to.
// Aggregated roles come with their rules filled in, as the aggregation
// controller leaves them.
func ClusterRoles() []*rbacv1.ClusterRole {
	view := []rbacv1.PolicyRule{
		rule(read, "", "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services", "services/status", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "configmaps"),
		rule(read, "", "limitranges", "resourcequotas", "bindings", "events", "pods/status", "resourcequotas/status", "namespaces/status", "replicationcontrollers/status", "pods/log"),
		rule(read, "", "namespaces"),
		rule(read, "discovery.k8s.io", "endpointslices"),
		rule(read, "apps", "controllerrevisions", "statefulsets", "statefulsets/scale", "statefulsets/status", "daemonsets", "daemonsets/status", "deployments", "deployments/scale", "deployments/status", "replicasets", "replicasets/scale", "replicasets/status"),
		rule(read, "autoscaling", "horizontalpodautoscalers", "horizontalpodautoscalers/status"),
		rule(read, "batch", "jobs", "cronjobs", "cronjobs/status", "jobs/status"),
		rule(read, "extensions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale", "deployments/status", "ingresses", "ingresses/status", "replicasets", "replicasets/scale", "replicasets/status", "replicationcontrollers/scale", "networkpolicies"),
		rule(read, "policy", "poddisruptionbudgets", "poddisruptionbudgets/status"),
		rule(read, "networking.k8s.io", "networkpolicies", "ingresses", "ingresses/status"),
	}
	edit := []rbacv1.PolicyRule{
		rule(read, "", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets", "services/proxy"),
		rule([]string{"impersonate"}, "", "serviceaccounts"),
		rule(write, "", "pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"),
		rule([]string{"create"}, "", "pods/eviction"),
		rule(write, "", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services", "services/proxy", "persistentvolumeclaims", "configmaps", "secrets", "events"),
		rule([]string{"create"}, "", "serviceaccounts/token"),
		rule(write, "apps", "statefulsets", "statefulsets/scale", "daemonsets", "deployments", "deployments/scale", "deployments/rollback", "replicasets", "replicasets/scale"),
		rule(write, "autoscaling", "horizontalpodautoscalers"),
		rule(write, "batch", "jobs", "cronjobs"),
		rule(write, "extensions", "daemonsets", "deployments", "deployments/scale", "deployments/rollback", "ingresses", "replicasets", "replicasets/scale", "replicationcontrollers/scale", "networkpolicies"),
		rule(write, "policy", "poddisruptionbudgets"),
		rule(write, "networking.k8s.io", "networkpolicies", "ingresses"),
		rule(readWrite, "coordination.k8s.io", "leases"),
	}
	admin := []rbacv1.PolicyRule{
		rule([]string{"create"}, "authorization.k8s.io", "localsubjectaccessreviews"),
		rule(readWrite, "rbac.authorization.k8s.io", "roles", "rolebindings"),
	}
	all := func(rs ...[]rbacv1.PolicyRule) []rbacv1.PolicyRule {
		var out []rbacv1.PolicyRule
		for _, r := range rs {
			out = append(out, r...)
		}
		return out
	}
	get := []string{"get"}
	return []*rbacv1.ClusterRole{
		{ObjectMeta: bootstrapMeta("cluster-admin", nil), Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}},
			nonResource([]string{"*"}, "*"),
		}},
		{ObjectMeta: bootstrapMeta("admin", nil), AggregationRule: aggregation(aggregateToAdmin), Rules: all(admin, edit, view)},
		{ObjectMeta: bootstrapMeta("edit", map[string]string{aggregateToAdmin: "true"}), AggregationRule: aggregation(aggregateToEdit), Rules: all(edit, view)},
		{ObjectMeta: bootstrapMeta("view", map[string]string{aggregateToEdit: "true"}), AggregationRule: aggregation(aggregateToView), Rules: view},
		{ObjectMeta: bootstrapMeta("system:aggregate-to-admin", map[string]string{aggregateToAdmin: "true"}), Rules: admin},
		{ObjectMeta: bootstrapMeta("system:aggregate-to-edit", map[string]string{aggregateToEdit: "true"}), Rules: edit},
		{ObjectMeta: bootstrapMeta("system:aggregate-to-view", map[string]string{aggregateToView: "true"}), Rules: view},
		// metrics-server's role, aggregated into view, edit and admin:
		// nanokube serves metrics.k8s.io itself.
		{ObjectMeta: bootstrapMeta("system:aggregated-metrics-reader", map[string]string{aggregateToView: "true", aggregateToEdit: "true", aggregateToAdmin: "true"}),
			Rules: []rbacv1.PolicyRule{rule(read, "metrics.k8s.io", "pods", "nodes")}},
		{ObjectMeta: bootstrapMeta("system:discovery", nil), Rules: []rbacv1.PolicyRule{
			nonResource(get, "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"),
		}},
		{ObjectMeta: bootstrapMeta("system:basic-user", nil), Rules: []rbacv1.PolicyRule{
			rule([]string{"create"}, "authentication.k8s.io", "selfsubjectreviews"),
			rule([]string{"create"}, "authorization.k8s.io", "selfsubjectaccessreviews", "selfsubjectrulesreviews"),
		}},
		{ObjectMeta: bootstrapMeta("system:public-info-viewer", nil), Rules: []rbacv1.PolicyRule{
			nonResource(get, "/healthz", "/livez", "/readyz", "/version", "/version/"),
		}},
		{ObjectMeta: bootstrapMeta("system:monitoring", nil), Rules: []rbacv1.PolicyRule{
			nonResource(get, "/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics", "/metrics/slis", "/readyz", "/readyz/*"),
		}},
		{ObjectMeta: bootstrapMeta("system:auth-delegator", nil), Rules: []rbacv1.PolicyRule{
			rule([]string{"create"}, "authentication.k8s.io", "tokenreviews"),
			rule([]string{"create"}, "authorization.k8s.io", "subjectaccessreviews"),
		}},
		{ObjectMeta: bootstrapMeta("system:service-account-issuer-discovery", nil), Rules: []rbacv1.PolicyRule{
			nonResource(get, "/.well-known/openid-configuration", "/.well-known/openid-configuration/", "/openid/v1/jwks", "/openid/v1/jwks/"),
		}},
		{ObjectMeta: bootstrapMeta("system:kube-dns", nil), Rules: []rbacv1.PolicyRule{
			rule([]string{"list", "watch"}, "", "endpoints", "services"),
		}},
		{ObjectMeta: bootstrapMeta("system:node-proxier", nil), Rules: []rbacv1.PolicyRule{
			rule([]string{"list", "watch"}, "", "services", "endpoints"),
			rule([]string{"get", "list", "watch"}, "", "nodes"),
			rule([]string{"create", "patch", "update"}, "", "events"),
			rule([]string{"create", "patch", "update"}, "events.k8s.io", "events"),
			rule([]string{"list", "watch"}, "discovery.k8s.io", "endpointslices"),
		}},
	}
}

func group(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
}

// ClusterRoleBindings are kube-apiserver's bootstrap bindings of those roles.
func ClusterRoleBindings() []*rbacv1.ClusterRoleBinding {
	bind := func(role string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{ObjectMeta: bootstrapMeta(role, nil),
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}, Subjects: subjects}
	}
	return []*rbacv1.ClusterRoleBinding{
		bind("cluster-admin", group("system:masters")),
		bind("system:discovery", group("system:authenticated")),
		bind("system:basic-user", group("system:authenticated")),
		bind("system:public-info-viewer", group("system:authenticated"), group("system:unauthenticated")),
		bind("system:monitoring", group("system:monitoring")),
		bind("system:service-account-issuer-discovery", group("system:serviceaccounts")),
		bind("system:kube-dns", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "kube-dns", Namespace: "kube-system"}),
		bind("system:node-proxier", rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "system:kube-proxy"}),
	}
}
