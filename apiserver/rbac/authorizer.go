// Package rbac decides requests the way kube-apiserver's RBAC authorizer
// does, over an in-memory copy of the Roles, ClusterRoles and their
// bindings (kept by the API server from the store's watch), and holds the
// default roles and bindings a cluster is bootstrapped with.
package rbac

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// User is who asks.
type User struct {
	Name   string
	Groups []string
}

// Attributes are what a request asks to do.
type Attributes struct {
	Verb            string // get list watch create update patch delete deletecollection impersonate ...; HTTP verb for paths
	ResourceRequest bool
	Namespace       string
	APIGroup        string
	Resource        string
	Subresource     string
	Name            string
	Path            string // non-resource requests
}

// Cache holds the RBAC objects and answers authorization questions. It is
// safe for concurrent use.
type Cache struct {
	mu                  sync.RWMutex
	clusterRoles        map[string]*rbacv1.ClusterRole
	roles               map[string]*rbacv1.Role // namespace/name
	clusterRoleBindings map[string]*rbacv1.ClusterRoleBinding
	roleBindings        map[string]map[string]*rbacv1.RoleBinding // namespace → name
	// Derived on every change, so a decision only reads: bindings in
	// name order and each cluster role's rules with aggregation.
	crbs      []*rbacv1.ClusterRoleBinding
	rbs       map[string][]*rbacv1.RoleBinding
	effective map[string][]rbacv1.PolicyRule
	// revs is the revision each object was last seen at (negative:
	// deleted), so a change the API server writes through and the same
	// change arriving later from the watch apply once, in order.
	revs map[string]int64
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{
		clusterRoles:        map[string]*rbacv1.ClusterRole{},
		roles:               map[string]*rbacv1.Role{},
		clusterRoleBindings: map[string]*rbacv1.ClusterRoleBinding{},
		roleBindings:        map[string]map[string]*rbacv1.RoleBinding{},
		rbs:                 map[string][]*rbacv1.RoleBinding{},
		effective:           map[string][]rbacv1.PolicyRule{},
		revs:                map[string]int64{},
	}
}

// Put adds or replaces an object (Role, ClusterRole, RoleBinding,
// ClusterRoleBinding) seen at revision rev.
func (c *Cache) Put(obj runtime.Object, rev int64) { c.change(obj, rev, false) }

// Delete removes an object deleted at revision rev.
func (c *Cache) Delete(obj runtime.Object, rev int64) { c.change(obj, rev, true) }

func (c *Cache) change(obj runtime.Object, rev int64, del bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	key := fmt.Sprintf("%T/%s/%s", obj, m.GetNamespace(), m.GetName())
	if last := c.revs[key]; rev <= abs(last) {
		return // already applied
	}
	if del {
		c.revs[key] = -rev
	} else {
		c.revs[key] = rev
	}
	switch o := obj.(type) {
	case *rbacv1.ClusterRole:
		if del {
			delete(c.clusterRoles, o.Name)
		} else {
			c.clusterRoles[o.Name] = o
		}
		clear(c.effective)
		for _, name := range sortedNames(c.clusterRoles) {
			c.effective[name] = c.aggregate(name, map[string]bool{})
		}
	case *rbacv1.Role:
		if del {
			delete(c.roles, o.Namespace+"/"+o.Name)
		} else {
			c.roles[o.Namespace+"/"+o.Name] = o
		}
	case *rbacv1.ClusterRoleBinding:
		if del {
			delete(c.clusterRoleBindings, o.Name)
		} else {
			c.clusterRoleBindings[o.Name] = o
		}
		c.crbs = c.crbs[:0]
		for _, name := range sortedNames(c.clusterRoleBindings) {
			c.crbs = append(c.crbs, c.clusterRoleBindings[name])
		}
	case *rbacv1.RoleBinding:
		if del {
			delete(c.roleBindings[o.Namespace], o.Name)
		} else {
			if c.roleBindings[o.Namespace] == nil {
				c.roleBindings[o.Namespace] = map[string]*rbacv1.RoleBinding{}
			}
			c.roleBindings[o.Namespace][o.Name] = o
		}
		var list []*rbacv1.RoleBinding
		for _, name := range sortedNames(c.roleBindings[o.Namespace]) {
			list = append(list, c.roleBindings[o.Namespace][name])
		}
		c.rbs[o.Namespace] = list
	}
}

// Authorize reports whether u may do a, with RBAC's reason when allowed.
func (c *Cache) Authorize(u User, a Attributes) (bool, string) {
	allowed, reason := false, ""
	c.visit(u, a.Namespace, func(source string, rules []rbacv1.PolicyRule) bool {
		for i := range rules {
			if RuleAllows(a, &rules[i]) {
				allowed, reason = true, "RBAC: allowed by "+source
				return false
			}
		}
		return true
	})
	return allowed, reason
}

// Rules are the rules that apply to u in namespace (cluster-wide ones
// included), for SelfSubjectRulesReview.
func (c *Cache) Rules(u User, namespace string) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	c.visit(u, namespace, func(_ string, rules []rbacv1.PolicyRule) bool {
		out = append(out, rules...)
		return true
	})
	return out
}

// visit calls fn with the rules of every binding that names u: cluster
// role bindings, then the role bindings of namespace. fn returns false to stop.
func (c *Cache) visit(u User, namespace string, fn func(source string, rules []rbacv1.PolicyRule) bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, b := range c.crbs {
		subj, ok := appliesTo(u, b.Subjects, "")
		if !ok || b.RoleRef.Kind != "ClusterRole" {
			continue
		}
		src := fmt.Sprintf("ClusterRoleBinding %q of ClusterRole %q to %s", b.Name, b.RoleRef.Name, describe(subj, ""))
		if !fn(src, c.effective[b.RoleRef.Name]) {
			return
		}
	}
	if namespace == "" {
		return
	}
	for _, b := range c.rbs[namespace] {
		subj, ok := appliesTo(u, b.Subjects, namespace)
		if !ok {
			continue
		}
		var rules []rbacv1.PolicyRule
		switch b.RoleRef.Kind {
		case "ClusterRole":
			rules = c.effective[b.RoleRef.Name]
		case "Role":
			if r := c.roles[namespace+"/"+b.RoleRef.Name]; r != nil {
				rules = r.Rules
			}
		}
		src := fmt.Sprintf("RoleBinding %q of %s %q to %s", b.Name+"/"+namespace, b.RoleRef.Kind, b.RoleRef.Name, describe(subj, namespace))
		if !fn(src, rules) {
			return
		}
	}
}

// aggregate is a cluster role's rules, with those of the roles its
// aggregationRule selects.
func (c *Cache) aggregate(name string, seen map[string]bool) []rbacv1.PolicyRule {
	if seen[name] {
		return nil
	}
	seen[name] = true
	cr := c.clusterRoles[name]
	if cr == nil {
		return nil
	}
	rules := append([]rbacv1.PolicyRule{}, cr.Rules...)
	if cr.AggregationRule == nil {
		return rules
	}
	for _, sel := range cr.AggregationRule.ClusterRoleSelectors {
		s, err := metav1.LabelSelectorAsSelector(&sel)
		if err != nil {
			continue
		}
		for _, other := range sortedNames(c.clusterRoles) {
			if o := c.clusterRoles[other]; other != name && s.Matches(labels.Set(o.Labels)) {
				for _, r := range c.aggregate(other, seen) {
					if !containsRule(rules, r) {
						rules = append(rules, r)
					}
				}
			}
		}
	}
	return rules
}

func containsRule(rules []rbacv1.PolicyRule, r rbacv1.PolicyRule) bool {
	for _, x := range rules {
		if slices.Equal(x.Verbs, r.Verbs) && slices.Equal(x.APIGroups, r.APIGroups) && slices.Equal(x.Resources, r.Resources) &&
			slices.Equal(x.ResourceNames, r.ResourceNames) && slices.Equal(x.NonResourceURLs, r.NonResourceURLs) {
			return true
		}
	}
	return false
}

// appliesTo finds the subject that names u; bindingNamespace defaults a
// ServiceAccount subject's namespace.
func appliesTo(u User, subjects []rbacv1.Subject, bindingNamespace string) (rbacv1.Subject, bool) {
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			if s.Name == u.Name {
				return s, true
			}
		case rbacv1.GroupKind:
			if slices.Contains(u.Groups, s.Name) {
				return s, true
			}
		case rbacv1.ServiceAccountKind:
			ns := s.Namespace
			if ns == "" {
				ns = bindingNamespace
			}
			if ns != "" && u.Name == "system:serviceaccount:"+ns+":"+s.Name {
				return s, true
			}
		}
	}
	return rbacv1.Subject{}, false
}

func describe(s rbacv1.Subject, bindingNamespace string) string {
	if s.Kind == rbacv1.ServiceAccountKind {
		ns := s.Namespace
		if ns == "" {
			ns = bindingNamespace
		}
		return fmt.Sprintf("ServiceAccount %q", s.Name+"/"+ns)
	}
	return fmt.Sprintf("%s %q", s.Kind, s.Name)
}

// RuleAllows is RBAC's rule match.
func RuleAllows(a Attributes, r *rbacv1.PolicyRule) bool {
	if !matches(r.Verbs, a.Verb) {
		return false
	}
	if !a.ResourceRequest {
		return nonResourceMatches(r.NonResourceURLs, a.Path)
	}
	if !matches(r.APIGroups, a.APIGroup) || !resourceMatches(r.Resources, a.Resource, a.Subresource) {
		return false
	}
	return len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, a.Name)
}

func matches(list []string, v string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, v)
}

func resourceMatches(list []string, resource, sub string) bool {
	combined := resource
	if sub != "" {
		combined += "/" + sub
	}
	for _, r := range list {
		switch {
		case r == "*", r == combined:
			return true
		case sub != "" && r == "*/"+sub:
			return true
		case sub != "" && r == resource+"/*":
			return true
		}
	}
	return false
}

func nonResourceMatches(list []string, path string) bool {
	for _, u := range list {
		if u == "*" || u == path || (strings.HasSuffix(u, "*") && strings.HasPrefix(path, strings.TrimSuffix(u, "*"))) {
			return true
		}
	}
	return false
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ClusterRoleRules are a cluster role's rules with aggregation.
func (c *Cache) ClusterRoleRules(name string) []rbacv1.PolicyRule {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]rbacv1.PolicyRule{}, c.effective[name]...)
}
