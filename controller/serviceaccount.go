package controller

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// ServiceAccountConfig builds the ServiceAccount controller.
type ServiceAccountConfig struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Log       *slog.Logger
}

// ServiceAccount keeps a "default" ServiceAccount in every active namespace.
type ServiceAccount struct {
	cfg    ServiceAccountConfig
	ns     corelisters.NamespaceLister
	sa     corelisters.ServiceAccountLister
	synced []cache.InformerSynced
	w      *worker
}

// NewServiceAccount builds the controller.
func NewServiceAccount(cfg ServiceAccountConfig) (*ServiceAccount, error) {
	nsInf := cfg.Informers.Core().V1().Namespaces()
	saInf := cfg.Informers.Core().V1().ServiceAccounts()
	c := &ServiceAccount{cfg: cfg, ns: nsInf.Lister(), sa: saInf.Lister()}
	c.w = newWorker("serviceaccount", cfg.Log, c.sync)
	if _, err := nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.w.enqueue(obj) },
		UpdateFunc: func(_, obj any) { c.w.enqueue(obj) },
	}); err != nil {
		return nil, err
	}
	if _, err := saInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if sa, ok := obj.(*corev1.ServiceAccount); ok && sa.Name == "default" {
				c.w.queue.Add(sa.Namespace)
			}
		},
	}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{nsInf.Informer().HasSynced, saInf.Informer().HasSynced}
	return c, nil
}

// Run works until ctx ends.
func (c *ServiceAccount) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

func (c *ServiceAccount) sync(ctx context.Context, ns string) error {
	n, err := c.ns.Get(ns)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if n.Status.Phase != corev1.NamespaceActive {
		return nil
	}
	if _, err := c.sa.ServiceAccounts(ns).Get("default"); err == nil {
		return nil
	}
	_, err = c.cfg.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsForbidden(err) {
		return fmt.Errorf("create default service account in %s: %w", ns, err)
	}
	return nil
}
