package apiserver

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

// committed runs what follows a stored change: the RBAC cache sees it at
// once. (Quota usage in status is the resource quota controller's.)
func (s *Server) committed(res *registry.Resource, obj runtime.Object, deleted bool) {
	s.writeThroughRBAC(res, obj, deleted)
}

func (s *Server) quotas(ns string) ([]*corev1.ResourceQuota, error) {
	res := s.resource(schemaCoreV1, "resourcequotas")
	if res == nil || ns == "" {
		return nil, nil
	}
	kvs, _, _, err := s.store.List(keyPrefix(res, ns), store.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []*corev1.ResourceQuota
	for _, kv := range kvs {
		obj, err := decodeStored(res, kv)
		if err != nil {
			return nil, err
		}
		out = append(out, obj.(*corev1.ResourceQuota))
	}
	return out, nil
}

// quotaTargets are the resources whose objects a quota's hard names count.
func (s *Server) quotaTargets(hard corev1.ResourceList) []*registry.Resource {
	seen := map[*registry.Resource]bool{}
	var out []*registry.Resource
	add := func(r *registry.Resource) {
		if r != nil && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for name := range hard {
		n := string(name)
		switch {
		case n == "pods" || strings.HasPrefix(n, "requests.") && n != "requests.storage" || strings.HasPrefix(n, "limits.") || n == "cpu" || n == "memory" || n == "ephemeral-storage":
			add(s.resource(schemaCoreV1, "pods"))
		case strings.HasPrefix(n, "services"):
			add(s.resource(schemaCoreV1, "services"))
		case n == "persistentvolumeclaims" || n == "requests.storage" || strings.Contains(n, ".storageclass.storage.k8s.io/"):
			add(s.resource(schemaCoreV1, "persistentvolumeclaims"))
		case n == "configmaps" || n == "secrets" || n == "replicationcontrollers" || n == "resourcequotas":
			add(s.resource(schemaCoreV1, n))
		case strings.HasPrefix(n, "count/"):
			add(s.countTarget(strings.TrimPrefix(n, "count/")))
		}
	}
	return out
}

// countTarget resolves "deployments.apps" (or "pods") to a served resource.
func (s *Server) countTarget(gr string) *registry.Resource {
	parsed := schema.ParseGroupResource(gr)
	for _, g := range s.catalog.get().groups {
		if g.name != parsed.Group {
			continue
		}
		for _, v := range g.versions {
			for _, r := range g.byVer[v] {
				if r.Plural == parsed.Resource && r.Namespaced {
					return r
				}
			}
		}
	}
	return nil
}

// namespaceUsage counts what q tracks over the namespace's objects.
func (s *Server) namespaceUsage(ns string, q *corev1.ResourceQuota) (corev1.ResourceList, error) {
	used := corev1.ResourceList{}
	for name := range q.Spec.Hard {
		used[name] = resource.MustParse("0")
	}
	for _, res := range s.quotaTargets(q.Spec.Hard) {
		kvs, _, _, err := s.store.List(keyPrefix(res, ns), store.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			obj, err := decodeStored(res, kv)
			if err != nil {
				return nil, err
			}
			addUsage(used, maskUsage(objectUsage(res, obj, q), q.Spec.Hard))
		}
	}
	return used, nil
}

// objectUsage is what one object costs under q (nothing when q's scopes
// exclude it).
func objectUsage(res *registry.Resource, obj runtime.Object, q *corev1.ResourceQuota) corev1.ResourceList {
	u := corev1.ResourceList{}
	one := resource.MustParse("1")
	count := "count/" + res.Plural
	if res.GroupVersion.Group != "" {
		count += "." + res.GroupVersion.Group
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		if o.Status.Phase == corev1.PodSucceeded || o.Status.Phase == corev1.PodFailed || !podInScopes(o, q.Spec.Scopes) {
			return u
		}
		u["pods"], u[corev1.ResourceName(count)] = one, one
		req, lim := podTotals(o)
		for k, v := range req {
			u[corev1.ResourceName("requests."+string(k))] = v
			if k == corev1.ResourceCPU || k == corev1.ResourceMemory || k == corev1.ResourceEphemeralStorage {
				u[k] = v
			}
		}
		for k, v := range lim {
			u[corev1.ResourceName("limits."+string(k))] = v
		}
		return u
	case *corev1.Service:
		u["services"] = one
		n := int64(0)
		if o.Spec.Type == corev1.ServiceTypeNodePort || o.Spec.Type == corev1.ServiceTypeLoadBalancer {
			n = int64(len(o.Spec.Ports))
		}
		u["services.nodeports"] = *resource.NewQuantity(n, resource.DecimalSI)
		if o.Spec.Type == corev1.ServiceTypeLoadBalancer {
			u["services.loadbalancers"] = one
		}
	case *corev1.PersistentVolumeClaim:
		u["persistentvolumeclaims"] = one
		st := o.Spec.Resources.Requests[corev1.ResourceStorage]
		u["requests.storage"] = st
		if c := o.Spec.StorageClassName; c != nil && *c != "" {
			u[corev1.ResourceName(*c+".storageclass.storage.k8s.io/requests.storage")] = st
			u[corev1.ResourceName(*c+".storageclass.storage.k8s.io/persistentvolumeclaims")] = one
		}
	default:
		if res.GroupVersion.Group == "" {
			u[corev1.ResourceName(res.Plural)] = one
		}
	}
	u[corev1.ResourceName(count)] = one
	return u
}

func podInScopes(pod *corev1.Pod, scopes []corev1.ResourceQuotaScope) bool {
	for _, sc := range scopes {
		terminating := pod.Spec.ActiveDeadlineSeconds != nil
		bestEffort := pod.Status.QOSClass == corev1.PodQOSBestEffort
		switch sc {
		case corev1.ResourceQuotaScopeTerminating:
			if !terminating {
				return false
			}
		case corev1.ResourceQuotaScopeNotTerminating:
			if terminating {
				return false
			}
		case corev1.ResourceQuotaScopeBestEffort:
			if !bestEffort {
				return false
			}
		case corev1.ResourceQuotaScopeNotBestEffort:
			if bestEffort {
				return false
			}
		}
	}
	return true
}

func maskUsage(u, hard corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for k, v := range u {
		if _, ok := hard[k]; ok {
			out[k] = v
		}
	}
	return out
}

func addUsage(dst, src corev1.ResourceList) {
	for k, v := range src {
		q := dst[k]
		q.Add(v)
		dst[k] = q
	}
}

// admitQuota is the ResourceQuota plugin: a new object that would take a
// namespace over one of its quotas is refused with kube-apiserver's message.
func (s *Server) admitQuota(res *registry.Resource, obj runtime.Object, name string) error {
	if !res.Namespaced {
		return nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	qs, err := s.quotas(m.GetNamespace())
	if err != nil || len(qs) == 0 {
		return err
	}
	gr := res.GroupVersionResource().GroupResource()
	sort.Slice(qs, func(i, j int) bool { return qs[i].Name < qs[j].Name })
	for _, q := range qs {
		if pod, ok := obj.(*corev1.Pod); ok && podInScopes(pod, q.Spec.Scopes) {
			if missing := missingPodResources(pod, q.Spec.Hard); missing != "" {
				return apierrors.NewForbidden(gr, name, fmt.Errorf("failed quota: %s: must specify %s", q.Name, missing))
			}
		}
		delta := maskUsage(objectUsage(res, obj, q), q.Spec.Hard)
		if len(delta) == 0 {
			continue
		}
		used, err := s.namespaceUsage(m.GetNamespace(), q)
		if err != nil {
			return err
		}
		var exceeded []corev1.ResourceName
		for k, d := range delta {
			total := used[k].DeepCopy()
			total.Add(d)
			if hard := q.Spec.Hard[k]; total.Cmp(hard) > 0 {
				exceeded = append(exceeded, k)
			}
		}
		if len(exceeded) > 0 {
			return apierrors.NewForbidden(gr, name, fmt.Errorf("exceeded quota: %s, requested: %s, used: %s, limited: %s",
				q.Name, prettyUsage(delta, exceeded), prettyUsage(used, exceeded), prettyUsage(q.Spec.Hard, exceeded)))
		}
	}
	return nil
}

// missingPodResources lists the compute resources a quota tracks that a
// pod's containers do not set ("limits.cpu for: app; requests.memory for: app").
func missingPodResources(pod *corev1.Pod, hard corev1.ResourceList) string {
	var parts []string
	for _, name := range sortedResourceNames(hard) {
		var kind, res string
		switch {
		case strings.HasPrefix(name, "requests.") && name != "requests.storage":
			kind, res = "requests", strings.TrimPrefix(name, "requests.")
		case strings.HasPrefix(name, "limits."):
			kind, res = "limits", strings.TrimPrefix(name, "limits.")
		case name == "cpu" || name == "memory":
			kind, res = "requests", name
		default:
			continue
		}
		var lacking []string
		for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
			list := c.Resources.Requests
			if kind == "limits" {
				list = c.Resources.Limits
			}
			if _, ok := list[corev1.ResourceName(res)]; !ok {
				lacking = append(lacking, c.Name)
			}
		}
		if len(lacking) > 0 {
			parts = append(parts, name+" for: "+strings.Join(lacking, ","))
		}
	}
	return strings.Join(parts, "; ")
}

func prettyUsage(l corev1.ResourceList, names []corev1.ResourceName) string {
	keys := make([]string, 0, len(names))
	for _, n := range names {
		keys = append(keys, string(n))
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		q := l[corev1.ResourceName(k)]
		parts = append(parts, k+"="+q.String())
	}
	return strings.Join(parts, ",")
}
