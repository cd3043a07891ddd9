package apiserver

import (
	"fmt"
	"net/http"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/nanokube/nanokube/apiserver/rbac"
	"github.com/nanokube/nanokube/apiserver/registry"
)

// checkEscalation is RBAC's escalation prevention: a role may only hold
// rules its author holds (or may "escalate"), a binding may only grant a
// role whose rules its author holds (or may "bind").
func (s *Server) checkEscalation(r *http.Request, res *registry.Resource, obj runtime.Object) error {
	if res.GroupVersion.Group != rbacv1.GroupName {
		return nil
	}
	u := userFrom(r.Context())
	if u == nil || isMaster(u) || s.cfg.AlwaysAllow {
		return nil
	}
	var ns, name, kind string
	var rules []rbacv1.PolicyRule
	var ref *rbacv1.RoleRef
	switch o := obj.(type) {
	case *rbacv1.Role:
		ns, name, kind, rules = o.Namespace, o.Name, "roles", o.Rules
	case *rbacv1.ClusterRole:
		name, kind, rules = o.Name, "clusterroles", o.Rules
	case *rbacv1.RoleBinding:
		ns, name, ref = o.Namespace, o.Name, &o.RoleRef
	case *rbacv1.ClusterRoleBinding:
		name, ref = o.Name, &o.RoleRef
	default:
		return nil
	}
	gr := res.GroupVersionResource().GroupResource()
	if ref != nil {
		refRes := "clusterroles"
		if ref.Kind == "Role" {
			refRes = "roles"
		}
		if s.allowed(u, rbac.Attributes{Verb: "bind", ResourceRequest: true, APIGroup: rbacv1.GroupName, Resource: refRes, Name: ref.Name, Namespace: ns}) {
			return nil
		}
		rules = s.roleRules(ref, ns)
	} else if s.allowed(u, rbac.Attributes{Verb: "escalate", ResourceRequest: true, APIGroup: rbacv1.GroupName, Resource: kind, Name: name, Namespace: ns}) {
		return nil
	}
	var missing []string
	for _, rule := range rules {
		for _, a := range ruleAtoms(rule, ns) {
			if !s.allowed(u, a) {
				missing = append(missing, describeAtom(a))
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return apierrors.NewForbidden(gr, name, fmt.Errorf("user %q (groups=%q) is attempting to grant RBAC permissions not currently held:\n%s", u.Name, u.Groups, strings.Join(missing, "\n")))
}

// roleRules are the rules a binding's role reference grants.
func (s *Server) roleRules(ref *rbacv1.RoleRef, ns string) []rbacv1.PolicyRule {
	if ref.Kind == "Role" {
		obj, _, err := s.getObject(s.resource(rbacv1.SchemeGroupVersion, "roles"), ns, ref.Name)
		if err != nil {
			return nil
		}
		return obj.(*rbacv1.Role).Rules
	}
	return s.rbac.ClusterRoleRules(ref.Name)
}

// ruleAtoms breaks a rule into single verb/group/resource/name checks.
func ruleAtoms(r rbacv1.PolicyRule, ns string) []rbac.Attributes {
	var out []rbac.Attributes
	for _, v := range r.Verbs {
		for _, u := range r.NonResourceURLs {
			out = append(out, rbac.Attributes{Verb: v, Path: u})
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				names := r.ResourceNames
				if len(names) == 0 {
					names = []string{""}
				}
				for _, n := range names {
					out = append(out, rbac.Attributes{Verb: v, ResourceRequest: true, APIGroup: g, Resource: res, Name: n, Namespace: ns})
				}
			}
		}
	}
	return out
}

func describeAtom(a rbac.Attributes) string {
	if !a.ResourceRequest {
		return fmt.Sprintf("{NonResourceURLs:[%q], Verbs:[%q]}", a.Path, a.Verb)
	}
	if a.Name != "" {
		return fmt.Sprintf("{APIGroups:[%q], Resources:[%q], ResourceNames:[%q], Verbs:[%q]}", a.APIGroup, a.Resource, a.Name, a.Verb)
	}
	return fmt.Sprintf("{APIGroups:[%q], Resources:[%q], Verbs:[%q]}", a.APIGroup, a.Resource, a.Verb)
}
