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

// rootCAName is the ConfigMap every namespace gets.
const rootCAName = "kube-root-ca.crt"

// RootCAConfig builds the root CA publisher.
type RootCAConfig struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	CA        []byte
	Log       *slog.Logger
}

// RootCAPublisher keeps the kube-root-ca.crt ConfigMap (key ca.crt) in every
// namespace, so pods can verify the API server.
type RootCAPublisher struct {
	cfg    RootCAConfig
	ns     corelisters.NamespaceLister
	cm     corelisters.ConfigMapLister
	synced []cache.InformerSynced
	w      *worker
}

// NewRootCAPublisher builds the controller.
func NewRootCAPublisher(cfg RootCAConfig) (*RootCAPublisher, error) {
	nsInf := cfg.Informers.Core().V1().Namespaces()
	cmInf := cfg.Informers.Core().V1().ConfigMaps()
	c := &RootCAPublisher{cfg: cfg, ns: nsInf.Lister(), cm: cmInf.Lister()}
	c.w = newWorker("root-ca-cert-publisher", cfg.Log, c.sync)
	if _, err := nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.w.enqueue(obj) },
		UpdateFunc: func(_, obj any) { c.w.enqueue(obj) },
	}); err != nil {
		return nil, err
	}
	onCM := func(obj any) {
		if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Name == rootCAName {
			c.w.queue.Add(cm.Namespace)
		} else if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			if cm, ok := d.Obj.(*corev1.ConfigMap); ok && cm.Name == rootCAName {
				c.w.queue.Add(cm.Namespace)
			}
		}
	}
	if _, err := cmInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { onCM(obj) },
		DeleteFunc: onCM,
	}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{nsInf.Informer().HasSynced, cmInf.Informer().HasSynced}
	return c, nil
}

// Run works until ctx ends.
func (c *RootCAPublisher) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

func (c *RootCAPublisher) sync(ctx context.Context, ns string) error {
	if len(c.cfg.CA) == 0 {
		return nil
	}
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
	want := map[string]string{"ca.crt": string(c.cfg.CA)}
	cur, err := c.cm.ConfigMaps(ns).Get(rootCAName)
	switch {
	case apierrors.IsNotFound(err):
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: rootCAName, Annotations: map[string]string{
			"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
			Data: want}
		_, err = c.cfg.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) || apierrors.IsForbidden(err) {
			return nil
		}
	case err != nil:
	case cur.Data["ca.crt"] != want["ca.crt"]:
		next := cur.DeepCopy()
		next.Data = want
		_, err = c.cfg.Client.CoreV1().ConfigMaps(ns).Update(ctx, next, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("publish %s in %s: %w", rootCAName, ns, err)
	}
	return nil
}
