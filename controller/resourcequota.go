package controller

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
)

// ResourceQuotaConfig builds the resource quota controller.
type ResourceQuotaConfig struct {
	Client    kubernetes.Interface
	Metadata  metadata.Interface // counts of kinds without an informer here
	Informers informers.SharedInformerFactory
	// Counted are metadata informers of other kinds (the garbage
	// collector's), for object counts that change without a resync.
	Counted func(schema.GroupVersionResource) cache.SharedIndexInformer
	Log     *slog.Logger
	// Resync: how often every quota is recomputed anyway (upstream's
	// --resource-quota-sync-period, 5m).
	Resync time.Duration
}

// ResourceQuota keeps status.hard and status.used of every ResourceQuota
// like kube-controller-manager's quota controller: pods and their compute
// requests and limits (with the quota's scopes), object counts
// (`pods`, `services`, `count/deployments.apps`, …), services by type and
// claimed storage. Admission (refusing what exceeds the quota) is the API
// server's part.
type ResourceQuota struct {
	cfg     ResourceQuotaConfig
	quotas  corelisters.ResourceQuotaLister
	pods    corelisters.PodLister
	svcs    corelisters.ServiceLister
	pvcs    corelisters.PersistentVolumeClaimLister
	counted map[schema.GroupVersionResource]cache.SharedIndexInformer
	synced  []cache.InformerSynced
	w       *worker
}

// quotaCounted are the kinds counted from metadata informers.
var quotaCounted = []schema.GroupVersionResource{
	{Version: "v1", Resource: "configmaps"},
	{Version: "v1", Resource: "secrets"},
	{Version: "v1", Resource: "replicationcontrollers"},
}

// NewResourceQuota builds the controller.
func NewResourceQuota(cfg ResourceQuotaConfig) (*ResourceQuota, error) {
	if cfg.Resync == 0 {
		cfg.Resync = 5 * time.Minute
	}
	qInf := cfg.Informers.Core().V1().ResourceQuotas()
	podInf, svcInf, pvcInf := cfg.Informers.Core().V1().Pods(), cfg.Informers.Core().V1().Services(), cfg.Informers.Core().V1().PersistentVolumeClaims()
	c := &ResourceQuota{cfg: cfg, quotas: qInf.Lister(), pods: podInf.Lister(), svcs: svcInf.Lister(), pvcs: pvcInf.Lister(), counted: map[schema.GroupVersionResource]cache.SharedIndexInformer{}}
	c.w = newWorker("resourcequota", cfg.Log, c.sync)
	if _, err := qInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.w.enqueue,
		UpdateFunc: func(old, cur any) {
			// Our own status writes change nothing to compute.
			if o, n := old.(*corev1.ResourceQuota), cur.(*corev1.ResourceQuota); !equality.Semantic.DeepEqual(o.Spec, n.Spec) || !equality.Semantic.DeepEqual(o.Status.Hard, n.Spec.Hard) {
				c.w.enqueue(cur)
			}
		},
	}); err != nil {
		return nil, err
	}
	inNamespace := func(obj any) {
		if m, ok := metaOf(obj); ok {
			c.enqueueNamespace(m.GetNamespace())
		}
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: inNamespace, UpdateFunc: func(_, o any) { inNamespace(o) }, DeleteFunc: inNamespace}
	synced := []cache.InformerSynced{qInf.Informer().HasSynced}
	for _, inf := range []cache.SharedIndexInformer{podInf.Informer(), svcInf.Informer(), pvcInf.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return nil, err
		}
		synced = append(synced, inf.HasSynced)
	}
	if cfg.Counted != nil {
		for _, gvr := range quotaCounted {
			inf := cfg.Counted(gvr)
			if inf == nil {
				continue
			}
			if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: inNamespace, DeleteFunc: inNamespace}); err != nil {
				return nil, err
			}
			c.counted[gvr] = inf
			synced = append(synced, inf.HasSynced)
		}
	}
	c.synced = synced
	return c, nil
}

// Run works until ctx ends.
func (c *ResourceQuota) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

func (c *ResourceQuota) enqueueNamespace(ns string) {
	qs, err := c.quotas.ResourceQuotas(ns).List(labels.Everything())
	if err != nil {
		return
	}
	for _, q := range qs {
		c.w.queue.Add(q.Namespace + "/" + q.Name)
	}
}

func (c *ResourceQuota) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	q, err := c.quotas.ResourceQuotas(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	used, err := c.usage(ctx, q)
	if err != nil {
		return err
	}
	c.w.queue.AddAfter(key, c.cfg.Resync)
	next := q.DeepCopy()
	next.Status.Hard = q.Spec.Hard.DeepCopy()
	next.Status.Used = used
	if equality.Semantic.DeepEqual(q.Status, next.Status) {
		return nil
	}
	if _, err := c.cfg.Client.CoreV1().ResourceQuotas(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update quota %s status: %w", key, err)
	}
	return nil
}

// usage computes every resource the quota limits.
func (c *ResourceQuota) usage(ctx context.Context, q *corev1.ResourceQuota) (corev1.ResourceList, error) {
	ns := q.Namespace
	used := corev1.ResourceList{}
	var pods []*corev1.Pod
	podsLoaded := false
	for res := range q.Spec.Hard {
		name := string(res)
		switch {
		case isPodResource(res):
			if !podsLoaded {
				all, err := c.pods.Pods(ns).List(labels.Everything())
				if err != nil {
					return nil, err
				}
				for _, p := range all {
					if podCounts(p, time.Now()) && quotaScopesMatch(q, p) {
						pods = append(pods, p)
					}
				}
				podsLoaded = true
			}
			used[res] = podUsageOf(pods, res)
		case name == "services" || name == "count/services" || name == "services.loadbalancers" || name == "services.nodeports":
			svcs, err := c.svcs.Services(ns).List(labels.Everything())
			if err != nil {
				return nil, err
			}
			var n int64
			for _, s := range svcs {
				switch name {
				case "services.loadbalancers":
					if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
						n++
					}
				case "services.nodeports":
					if s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer {
						for _, p := range s.Spec.Ports {
							if p.NodePort != 0 {
								n++
							}
						}
					}
				default:
					n++
				}
			}
			used[res] = *resource.NewQuantity(n, resource.DecimalSI)
		case name == "persistentvolumeclaims" || name == "count/persistentvolumeclaims" || name == "requests.storage" ||
			strings.HasSuffix(name, ".storageclass.storage.k8s.io/requests.storage") || strings.HasSuffix(name, ".storageclass.storage.k8s.io/persistentvolumeclaims"):
			pvcs, err := c.pvcs.PersistentVolumeClaims(ns).List(labels.Everything())
			if err != nil {
				return nil, err
			}
			class, _, _ := strings.Cut(name, ".storageclass.storage.k8s.io/")
			byClass := strings.Contains(name, ".storageclass.storage.k8s.io/")
			total := resource.MustParse("0")
			var n int64
			for _, p := range pvcs {
				if byClass && (p.Spec.StorageClassName == nil || *p.Spec.StorageClassName != class) {
					continue
				}
				n++
				if r, ok := p.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
					total.Add(r)
				}
			}
			if strings.HasSuffix(name, "requests.storage") {
				used[res] = total
			} else {
				used[res] = *resource.NewQuantity(n, resource.DecimalSI)
			}
		default:
			gvr, ok := countedResource(name)
			if !ok {
				continue // not something this controller measures
			}
			n, err := c.count(ctx, gvr, ns)
			if err != nil {
				return nil, err
			}
			used[res] = *resource.NewQuantity(n, resource.DecimalSI)
		}
	}
	return used, nil
}

func isPodResource(res corev1.ResourceName) bool {
	switch res {
	case corev1.ResourcePods, "count/pods", corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage,
		corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory, corev1.ResourceRequestsEphemeralStorage,
		corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory, corev1.ResourceLimitsEphemeralStorage:
		return true
	}
	return false
}

// podCounts is upstream's QuotaV1Pod: pods that have ended, or whose
// graceful deletion has run out, no longer count.
func podCounts(p *corev1.Pod, now time.Time) bool {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false
	}
	if p.DeletionTimestamp != nil && p.DeletionGracePeriodSeconds != nil {
		if now.After(p.DeletionTimestamp.Add(time.Duration(*p.DeletionGracePeriodSeconds) * time.Second)) {
			return false
		}
	}
	return true
}

// quotaScopesMatch applies the quota's scopes to a pod.
func quotaScopesMatch(q *corev1.ResourceQuota, p *corev1.Pod) bool {
	match := func(scope corev1.ResourceQuotaScope, op corev1.ScopeSelectorOperator, values []string) bool {
		var ok bool
		switch scope {
		case corev1.ResourceQuotaScopeTerminating:
			ok = p.Spec.ActiveDeadlineSeconds != nil
		case corev1.ResourceQuotaScopeNotTerminating:
			ok = p.Spec.ActiveDeadlineSeconds == nil
		case corev1.ResourceQuotaScopeBestEffort:
			ok = qosClass(p) == corev1.PodQOSBestEffort
		case corev1.ResourceQuotaScopeNotBestEffort:
			ok = qosClass(p) != corev1.PodQOSBestEffort
		case corev1.ResourceQuotaScopePriorityClass:
			switch op {
			case corev1.ScopeSelectorOpExists, "":
				return p.Spec.PriorityClassName != ""
			case corev1.ScopeSelectorOpDoesNotExist:
				return p.Spec.PriorityClassName == ""
			case corev1.ScopeSelectorOpIn, corev1.ScopeSelectorOpNotIn:
				in := false
				for _, v := range values {
					in = in || v == p.Spec.PriorityClassName
				}
				return in == (op == corev1.ScopeSelectorOpIn)
			}
		default:
			return true
		}
		return ok
	}
	for _, s := range q.Spec.Scopes {
		if !match(s, "", nil) {
			return false
		}
	}
	if q.Spec.ScopeSelector != nil {
		for _, e := range q.Spec.ScopeSelector.MatchExpressions {
			if !match(e.ScopeName, e.Operator, e.Values) {
				return false
			}
		}
	}
	return true
}

// qosClass is the pod's QoS class as the API server recorded it (or
// BestEffort when no container asks for anything).
func qosClass(p *corev1.Pod) corev1.PodQOSClass {
	if p.Status.QOSClass != "" {
		return p.Status.QOSClass
	}
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		if len(c.Resources.Requests) > 0 || len(c.Resources.Limits) > 0 {
			return corev1.PodQOSBurstable
		}
	}
	return corev1.PodQOSBestEffort
}

// podUsageOf sums a quota resource over pods: the pod count, or their
// requests/limits (the larger of the app containers' sum and the largest
// init container, plus the pod overhead, like upstream's PodRequests).
func podUsageOf(pods []*corev1.Pod, res corev1.ResourceName) resource.Quantity {
	if res == corev1.ResourcePods || res == "count/pods" {
		return *resource.NewQuantity(int64(len(pods)), resource.DecimalSI)
	}
	limits := strings.HasPrefix(string(res), "limits.")
	base := corev1.ResourceName(strings.TrimPrefix(strings.TrimPrefix(string(res), "requests."), "limits."))
	total := resource.MustParse("0")
	if base == corev1.ResourceCPU {
		total = *resource.NewMilliQuantity(0, resource.DecimalSI)
	}
	for _, p := range pods {
		pick := func(c corev1.Container) (resource.Quantity, bool) {
			if limits {
				q, ok := c.Resources.Limits[base]
				return q, ok
			}
			q, ok := c.Resources.Requests[base]
			return q, ok
		}
		sum := resource.Quantity{}
		for _, c := range p.Spec.Containers {
			if q, ok := pick(c); ok {
				sum.Add(q)
			}
		}
		for _, c := range p.Spec.InitContainers {
			if q, ok := pick(c); ok && q.Cmp(sum) > 0 {
				sum = q.DeepCopy()
			}
		}
		if q, ok := p.Spec.Overhead[base]; ok {
			sum.Add(q)
		}
		total.Add(sum)
	}
	return total
}

// countedResource maps a quota name (configmaps, count/deployments.apps)
// to the resource it counts.
func countedResource(name string) (schema.GroupVersionResource, bool) {
	switch name {
	case "configmaps", "secrets", "replicationcontrollers", "resourcequotas":
		return schema.GroupVersionResource{Version: "v1", Resource: name}, true
	}
	rest, ok := strings.CutPrefix(name, "count/")
	if !ok {
		return schema.GroupVersionResource{}, false
	}
	res, group, _ := strings.Cut(rest, ".")
	return schema.GroupVersionResource{Group: group, Resource: res}, true
}

// preferredVersions are the versions counted kinds are listed in.
var preferredVersions = map[string]string{
	"": "v1", "apps": "v1", "batch": "v1", "networking.k8s.io": "v1", "policy": "v1", "rbac.authorization.k8s.io": "v1",
	"autoscaling": "v2", "discovery.k8s.io": "v1", "storage.k8s.io": "v1", "coordination.k8s.io": "v1", "events.k8s.io": "v1", "scheduling.k8s.io": "v1",
}

// count counts the namespace's objects of gvr: from a metadata informer
// when there is one, else with one metadata list through the API.
func (c *ResourceQuota) count(ctx context.Context, gvr schema.GroupVersionResource, ns string) (int64, error) {
	if gvr.Version == "" {
		v, ok := preferredVersions[gvr.Group]
		if !ok {
			groups, err := c.cfg.Client.Discovery().ServerGroups()
			if err != nil {
				return 0, err
			}
			for _, g := range groups.Groups {
				if g.Name == gvr.Group {
					v, ok = g.PreferredVersion.Version, true
				}
			}
			if !ok {
				return 0, nil // no such group: nothing to count
			}
		}
		gvr.Version = v
	}
	if inf := c.counted[gvr]; inf != nil {
		objs, err := inf.GetIndexer().ByIndex(cache.NamespaceIndex, ns)
		return int64(len(objs)), err
	}
	if gvr.Group == "" && gvr.Resource == "resourcequotas" {
		qs, err := c.quotas.ResourceQuotas(ns).List(labels.Everything())
		return int64(len(qs)), err
	}
	if c.cfg.Metadata == nil {
		return 0, nil
	}
	list, err := c.cfg.Metadata.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("count %s in %s: %w", gvr.Resource, ns, err)
	}
	return int64(len(list.Items)), nil
}
