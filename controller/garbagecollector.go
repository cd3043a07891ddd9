package controller

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// gcResources are the kinds whose ownerReferences the garbage collector
// follows (owners and dependents).
var gcResources = []schema.GroupVersionResource{
	{Version: "v1", Resource: "pods"},
	{Version: "v1", Resource: "services"},
	{Version: "v1", Resource: "configmaps"},
	{Version: "v1", Resource: "secrets"},
	{Version: "v1", Resource: "serviceaccounts"},
	{Version: "v1", Resource: "persistentvolumeclaims"},
	{Version: "v1", Resource: "endpoints"},
	{Version: "v1", Resource: "replicationcontrollers"},
	{Group: "apps", Version: "v1", Resource: "deployments"},
	{Group: "apps", Version: "v1", Resource: "replicasets"},
	{Group: "apps", Version: "v1", Resource: "statefulsets"},
	{Group: "apps", Version: "v1", Resource: "daemonsets"},
	{Group: "apps", Version: "v1", Resource: "controllerrevisions"},
	{Group: "batch", Version: "v1", Resource: "jobs"},
	{Group: "batch", Version: "v1", Resource: "cronjobs"},
	{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
	{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"},
}

// GarbageCollectorConfig builds the garbage collector.
type GarbageCollectorConfig struct {
	Metadata metadata.Interface
	Log      *slog.Logger
}

// GarbageCollector deletes objects whose owners are gone (background
// propagation), deletes dependents before their owner (foreground) and
// strips ownerReferences before the owner goes (orphan), like upstream.
type GarbageCollector struct {
	cfg       GarbageCollectorConfig
	factory   metadatainformer.SharedInformerFactory
	informers map[schema.GroupVersionResource]cache.SharedIndexInformer
	w         *worker

	mu    sync.Mutex
	nodes map[types.UID]gcNode // every known object
}

type gcNode struct {
	gvr    schema.GroupVersionResource
	ns     string
	name   string
	owners []metav1.OwnerReference
	// deleting: the cached object has a deletionTimestamp.
	deleting bool
}

const ownerIndex = "ownerUID"

// NewGarbageCollector builds the collector over metadata informers.
func NewGarbageCollector(cfg GarbageCollectorConfig) (*GarbageCollector, error) {
	gc := &GarbageCollector{cfg: cfg, factory: metadatainformer.NewSharedInformerFactory(cfg.Metadata, 0),
		informers: map[schema.GroupVersionResource]cache.SharedIndexInformer{}, nodes: map[types.UID]gcNode{}}
	gc.w = newWorker("garbagecollector", cfg.Log, gc.sync)
	gc.w.concurrency = 20 // upstream's --concurrent-gc-syncs
	for _, gvr := range gcResources {
		inf := gc.factory.ForResource(gvr).Informer()
		if err := inf.AddIndexers(cache.Indexers{ownerIndex: func(obj any) ([]string, error) {
			m, ok := obj.(*metav1.PartialObjectMetadata)
			if !ok {
				return nil, nil
			}
			var out []string
			for _, r := range m.OwnerReferences {
				out = append(out, string(r.UID))
			}
			return out, nil
		}}); err != nil {
			return nil, err
		}
		gvr := gvr
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { gc.observe(gvr, obj, false) },
			UpdateFunc: func(_, obj any) { gc.observe(gvr, obj, false) },
			DeleteFunc: func(obj any) { gc.observe(gvr, obj, true) },
		}); err != nil {
			return nil, err
		}
		gc.informers[gvr] = inf
	}
	return gc, nil
}

// observe records an object and queues whatever its change may affect:
// itself (owners gone? finalizers to act on?) and its dependents.
func (gc *GarbageCollector) observe(gvr schema.GroupVersionResource, obj any, deleted bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return
	}
	gc.mu.Lock()
	if deleted {
		delete(gc.nodes, m.UID)
	} else {
		gc.nodes[m.UID] = gcNode{gvr: gvr, ns: m.Namespace, name: m.Name, owners: m.OwnerReferences, deleting: m.DeletionTimestamp != nil}
	}
	gc.mu.Unlock()
	gc.w.queue.Add(string(m.UID))
	// Its owners may be waiting for it to go (foreground deletion).
	for _, r := range m.OwnerReferences {
		gc.w.queue.Add(string(r.UID))
	}
	for _, inf := range gc.informers {
		deps, _ := inf.GetIndexer().ByIndex(ownerIndex, string(m.UID))
		for _, d := range deps {
			if dm, ok := d.(*metav1.PartialObjectMetadata); ok {
				gc.w.queue.Add(string(dm.UID))
			}
		}
	}
}

// Run starts the informers and works until ctx ends.
func (gc *GarbageCollector) Run(ctx context.Context) error {
	gc.factory.Start(ctx.Done())
	defer gc.factory.Shutdown()
	var synced []cache.InformerSynced
	for _, inf := range gc.informers {
		synced = append(synced, inf.HasSynced)
	}
	return gc.w.run(ctx, synced...)
}

func (gc *GarbageCollector) lookup(uid types.UID) (gcNode, bool) {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	n, ok := gc.nodes[uid]
	return n, ok
}

// ownersObserved reports whether every owner is in the graph (true for
// none).
func (gc *GarbageCollector) ownersObserved(owners []metav1.OwnerReference) bool {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	for _, r := range owners {
		if _, ok := gc.nodes[r.UID]; !ok {
			return false
		}
	}
	return true
}

func (gc *GarbageCollector) dependents(uid types.UID) []*metav1.PartialObjectMetadata {
	var out []*metav1.PartialObjectMetadata
	for _, inf := range gc.informers {
		deps, _ := inf.GetIndexer().ByIndex(ownerIndex, string(uid))
		for _, d := range deps {
			if dm, ok := d.(*metav1.PartialObjectMetadata); ok {
				out = append(out, dm)
			}
		}
	}
	return out
}

func (gc *GarbageCollector) sync(ctx context.Context, key string) error {
	uid := types.UID(key)
	n, ok := gc.lookup(uid)
	if !ok {
		return nil
	}
	// Like upstream's graph: an object that is not being deleted and whose
	// owners are all in the graph needs no API call (an owner that goes
	// queues its dependents again).
	if !n.deleting && gc.ownersObserved(n.owners) {
		return nil
	}
	client := gc.cfg.Metadata.Resource(n.gvr).Namespace(n.ns)
	obj, err := client.Get(ctx, n.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if obj.UID != uid {
		return nil
	}
	// An owner being deleted in the foreground or orphaning its dependents.
	if obj.DeletionTimestamp != nil {
		switch {
		case slices.Contains(obj.Finalizers, metav1.FinalizerOrphanDependents):
			return gc.orphan(ctx, obj, n)
		case slices.Contains(obj.Finalizers, metav1.FinalizerDeleteDependents):
			return gc.foreground(ctx, obj, n)
		}
	}
	// A dependent whose owners are all gone is deleted.
	if len(obj.OwnerReferences) == 0 {
		return nil
	}
	for _, ref := range obj.OwnerReferences {
		if gc.ownerExists(ctx, ref, n.ns) {
			return nil
		}
	}
	bg := metav1.DeletePropagationBackground
	if err := client.Delete(ctx, n.name, metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete %s %s/%s whose owner is gone: %w", n.gvr.Resource, n.ns, n.name, err)
	}
	return nil
}

// ownerExists asks the API (not just the cache) before anything is deleted.
func (gc *GarbageCollector) ownerExists(ctx context.Context, ref metav1.OwnerReference, ns string) bool {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return true
	}
	var gvr schema.GroupVersionResource
	found := false
	for r := range gc.informers {
		if r.Group == gv.Group && kindOf(r) == ref.Kind {
			gvr, found = r, true
		}
	}
	if !found {
		return true // an owner kind we do not track: never collect
	}
	owner, err := gc.cfg.Metadata.Resource(gvr).Namespace(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		return true
	}
	return owner.UID == ref.UID
}

func kindOf(gvr schema.GroupVersionResource) string {
	return map[string]string{
		"pods": "Pod", "services": "Service", "configmaps": "ConfigMap", "secrets": "Secret", "serviceaccounts": "ServiceAccount",
		"persistentvolumeclaims": "PersistentVolumeClaim", "endpoints": "Endpoints", "replicationcontrollers": "ReplicationController",
		"deployments": "Deployment", "replicasets": "ReplicaSet", "statefulsets": "StatefulSet", "daemonsets": "DaemonSet",
		"controllerrevisions": "ControllerRevision", "jobs": "Job", "cronjobs": "CronJob", "endpointslices": "EndpointSlice", "ingresses": "Ingress",
	}[gvr.Resource]
}

// foreground deletes the dependents first; the owner's finalizer goes when
// none that block its deletion remain.
func (gc *GarbageCollector) foreground(ctx context.Context, obj *metav1.PartialObjectMetadata, n gcNode) error {
	deps := gc.dependents(obj.UID)
	fg := metav1.DeletePropagationForeground
	blocking := 0
	for _, d := range deps {
		dn, ok := gc.lookup(d.UID)
		if !ok {
			continue
		}
		for _, r := range d.OwnerReferences {
			if r.UID == obj.UID && r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion {
				blocking++
			}
		}
		if d.DeletionTimestamp == nil {
			if err := gc.cfg.Metadata.Resource(dn.gvr).Namespace(dn.ns).Delete(ctx, dn.name, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete dependent %s/%s: %w", dn.ns, dn.name, err)
			}
		}
	}
	if blocking > 0 {
		return nil // their deletion events bring us back
	}
	return gc.dropFinalizer(ctx, obj, n, metav1.FinalizerDeleteDependents)
}

// orphan removes the owner's references from its dependents, then the
// orphan finalizer.
func (gc *GarbageCollector) orphan(ctx context.Context, obj *metav1.PartialObjectMetadata, n gcNode) error {
	for _, d := range gc.dependents(obj.UID) {
		dn, ok := gc.lookup(d.UID)
		if !ok {
			continue
		}
		var keep []metav1.OwnerReference
		for _, r := range d.OwnerReferences {
			if r.UID != obj.UID {
				keep = append(keep, r)
			}
		}
		patch, _ := jsonMerge(map[string]any{"metadata": map[string]any{"ownerReferences": keep, "uid": d.UID}})
		if _, err := gc.cfg.Metadata.Resource(dn.gvr).Namespace(dn.ns).Patch(ctx, dn.name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("orphan %s/%s: %w", dn.ns, dn.name, err)
		}
	}
	return gc.dropFinalizer(ctx, obj, n, metav1.FinalizerOrphanDependents)
}

func (gc *GarbageCollector) dropFinalizer(ctx context.Context, obj *metav1.PartialObjectMetadata, n gcNode, f string) error {
	keep := slices.DeleteFunc(slices.Clone(obj.Finalizers), func(x string) bool { return x == f })
	patch, _ := jsonMerge(map[string]any{"metadata": map[string]any{"finalizers": keep, "resourceVersion": obj.ResourceVersion}})
	_, err := gc.cfg.Metadata.Resource(n.gvr).Namespace(n.ns).Patch(ctx, n.name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// Informer is the collector's metadata informer of gvr (nil when it does
// not follow that resource), for controllers that only count objects.
func (gc *GarbageCollector) Informer(gvr schema.GroupVersionResource) cache.SharedIndexInformer {
	return gc.informers[gvr]
}
