package controller

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
)

// NamespaceConfig builds the namespace controller.
type NamespaceConfig struct {
	Client    kubernetes.Interface
	Metadata  metadata.Interface
	Informers informers.SharedInformerFactory
	Log       *slog.Logger
}

// Namespace empties a namespace that is being deleted, then removes the
// kubernetes finalizer so the API server can delete it, like
// kube-controller-manager's namespace controller.
type Namespace struct {
	cfg    NamespaceConfig
	ns     corelisters.NamespaceLister
	synced []cache.InformerSynced
	w      *worker
}

// NewNamespace builds the controller.
func NewNamespace(cfg NamespaceConfig) (*Namespace, error) {
	inf := cfg.Informers.Core().V1().Namespaces()
	c := &Namespace{cfg: cfg, ns: inf.Lister()}
	c.w = newWorker("namespace", cfg.Log, c.sync)
	if _, err := inf.Informer().AddEventHandler(c.w.handler()); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{inf.Informer().HasSynced}
	return c, nil
}

// Run works until ctx ends.
func (c *Namespace) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

func (c *Namespace) sync(ctx context.Context, name string) error {
	ns, err := c.ns.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp == nil || !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		return nil
	}
	remaining, err := c.deleteContent(ctx, name)
	if err != nil {
		return err
	}
	if remaining > 0 {
		// Pods end gracefully and finalizers run: look again shortly.
		c.w.queue.AddAfter(name, 2*time.Second)
		return nil
	}
	next := ns.DeepCopy()
	next.Spec.Finalizers = slices.DeleteFunc(next.Spec.Finalizers, func(f corev1.FinalizerName) bool { return f == corev1.FinalizerKubernetes })
	if _, err := c.cfg.Client.CoreV1().Namespaces().Finalize(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("finalize namespace %s: %w", name, err)
	}
	return nil
}

// deleteContent deletes every namespaced object in ns and counts what is
// still there.
func (c *Namespace) deleteContent(ctx context.Context, ns string) (int, error) {
	lists, err := c.cfg.Client.Discovery().ServerPreferredNamespacedResources()
	if err != nil && len(lists) == 0 {
		return 0, fmt.Errorf("discover resources: %w", err)
	}
	remaining := 0
	bg := metav1.DeletePropagationBackground
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if !slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "delete") {
				continue
			}
			res := c.cfg.Metadata.Resource(gv.WithResource(r.Name)).Namespace(ns)
			items, err := res.List(ctx, metav1.ListOptions{})
			if err != nil {
				return 0, fmt.Errorf("list %s in %s: %w", r.Name, ns, err)
			}
			for _, it := range items.Items {
				remaining++
				if it.DeletionTimestamp != nil {
					continue
				}
				if err := res.Delete(ctx, it.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
					return 0, fmt.Errorf("delete %s %s/%s: %w", r.Name, ns, it.Name, err)
				}
			}
		}
	}
	if remaining == 0 {
		return 0, nil
	}
	// Count again: most deletions are immediate.
	again := 0
	for _, l := range lists {
		gv, _ := schema.ParseGroupVersion(l.GroupVersion)
		for _, r := range l.APIResources {
			if !slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "delete") {
				continue
			}
			items, err := c.cfg.Metadata.Resource(gv.WithResource(r.Name)).Namespace(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return 0, err
			}
			again += len(items.Items)
		}
	}
	return again, nil
}
