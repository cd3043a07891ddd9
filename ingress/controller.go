package ingress

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

const (
	// ClassName is the IngressClass the daemon creates, as the default.
	ClassName = "nanokube"
	// ControllerName is spec.controller of the classes this controller
	// serves.
	ControllerName = "nanokube.io/ingress"
	// classAnnotation is the deprecated way to pick a class.
	classAnnotation = "kubernetes.io/ingress.class"
)

// Config builds the controller.
type Config struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	// Recorder, when set, gets ingress-nginx's "Sync" event for every
	// new generation of an Ingress served.
	Recorder record.EventRecorder
	Log      *slog.Logger
}

// Controller keeps the routing Table of the Ingresses of its classes
// current and writes their status (the node IPs).
type Controller struct {
	cfg      Config
	ings     networkinglisters.IngressLister
	classes  networkinglisters.IngressClassLister
	svcs     corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister
	secrets  corelisters.SecretLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	table    atomic.Pointer[Table]
	fallback *tls.Certificate
	// announced is the generation of each Ingress (namespace/name/uid) a
	// Sync event was sent for (Run's goroutine only).
	announced map[string]int64
}

// New builds the controller and registers its informers.
func New(cfg Config) (*Controller, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	fallback, err := selfSigned(time.Now())
	if err != nil {
		return nil, err
	}
	f := cfg.Informers
	c := &Controller{cfg: cfg, fallback: fallback, announced: map[string]int64{},
		ings: f.Networking().V1().Ingresses().Lister(), classes: f.Networking().V1().IngressClasses().Lister(),
		svcs: f.Core().V1().Services().Lister(), slices: f.Discovery().V1().EndpointSlices().Lister(),
		secrets: f.Core().V1().Secrets().Lister(), nodes: f.Core().V1().Nodes().Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "ingress"})}
	c.table.Store(Build(nil, c, fallback))
	kick := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.queue.Add("sync") }, UpdateFunc: func(any, any) { c.queue.Add("sync") }, DeleteFunc: func(any) { c.queue.Add("sync") },
	}
	for _, inf := range []cache.SharedIndexInformer{
		f.Networking().V1().Ingresses().Informer(), f.Networking().V1().IngressClasses().Informer(), f.Core().V1().Services().Informer(),
		f.Discovery().V1().EndpointSlices().Informer(), f.Core().V1().Secrets().Informer(), f.Core().V1().Nodes().Informer(),
	} {
		if _, err := inf.AddEventHandler(kick); err != nil {
			return nil, fmt.Errorf("watch for the ingress controller: %w", err)
		}
		c.synced = append(c.synced, inf.HasSynced)
	}
	return c, nil
}

// Table is the current routing snapshot.
func (c *Controller) Table() *Table { return c.table.Load() }

// Handler is the HTTP handler for one node's listeners; dial connects to
// endpoints from that node.
func (c *Controller) Handler(dial DialFunc) http.Handler { return NewProxy(c.Table, dial, c.cfg.Log) }

// EnsureClass creates the IngressClass "nanokube", marked as the default,
// unless it exists (a user's changes to it are kept).
func (c *Controller) EnsureClass(ctx context.Context) error {
	ic := &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: ClassName, Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"},
			Labels: map[string]string{"app.kubernetes.io/managed-by": "nanokube"}},
		Spec: networkingv1.IngressClassSpec{Controller: ControllerName},
	}
	_, err := c.cfg.Client.NetworkingV1().IngressClasses().Create(ctx, ic, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create IngressClass %s: %w", ClassName, err)
	}
	return nil
}

// Run rebuilds the table and updates Ingress status on every change
// until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return nil
	}
	stop := context.AfterFunc(ctx, c.queue.ShutDown)
	defer stop()
	c.queue.Add("sync")
	for {
		key, quit := c.queue.Get()
		if quit {
			return nil
		}
		if err := c.sync(ctx); err != nil && ctx.Err() == nil {
			c.cfg.Log.Info("ingress sync failed", "err", err)
			c.queue.AddRateLimited(key)
		} else {
			c.queue.Forget(key)
		}
		c.queue.Done(key)
	}
}

func (c *Controller) sync(ctx context.Context) error {
	ings, err := c.ours()
	if err != nil {
		return err
	}
	t := Build(ings, c, c.fallback)
	old := c.table.Swap(t)
	if !slices.Equal(old.Problems, t.Problems) {
		for _, p := range t.Problems {
			c.cfg.Log.Info("ingress: " + p)
		}
	}
	c.announce(ings)
	return c.updateStatus(ctx, ings)
}

// announce records a Sync event for Ingresses new to the table or
// changed since, like ingress-nginx's "Scheduled for sync".
func (c *Controller) announce(ings []*networkingv1.Ingress) {
	seen := make(map[string]bool, len(ings))
	for _, ing := range ings {
		key := ing.Namespace + "/" + ing.Name + "/" + string(ing.UID)
		seen[key] = true
		if g, ok := c.announced[key]; ok && g == ing.Generation {
			continue
		}
		c.announced[key] = ing.Generation
		if c.cfg.Recorder != nil {
			c.cfg.Recorder.Event(ing, corev1.EventTypeNormal, "Sync", "Scheduled for sync")
		}
	}
	for key := range c.announced {
		if !seen[key] {
			delete(c.announced, key)
		}
	}
}

// ours are the Ingresses of a class with this controller: by
// spec.ingressClassName, by the deprecated annotation, or without either
// while "nanokube" is the default class.
func (c *Controller) ours() ([]*networkingv1.Ingress, error) {
	classes, err := c.classes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	mine := map[string]bool{}
	defaultMine := false
	for _, ic := range classes {
		if ic.Spec.Controller == ControllerName {
			mine[ic.Name] = true
			if ic.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true" {
				defaultMine = true
			}
		}
	}
	all, err := c.ings.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var out []*networkingv1.Ingress
	for _, ing := range all {
		switch {
		case ing.DeletionTimestamp != nil:
		case ing.Spec.IngressClassName != nil:
			if mine[*ing.Spec.IngressClassName] {
				out = append(out, ing)
			}
		case ing.Annotations[classAnnotation] != "":
			if mine[ing.Annotations[classAnnotation]] {
				out = append(out, ing)
			}
		case defaultMine:
			out = append(out, ing)
		}
	}
	return out, nil
}

// nodeIPs are the InternalIPs of every node: the ingress listens on each.
func (c *Controller) nodeIPs() ([]string, error) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var ips []string
	for _, n := range nodes {
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				ips = append(ips, a.Address)
			}
		}
	}
	sort.Strings(ips)
	return slices.Compact(ips), nil
}

func (c *Controller) updateStatus(ctx context.Context, ings []*networkingv1.Ingress) error {
	ips, err := c.nodeIPs()
	if err != nil {
		return err
	}
	want := make([]networkingv1.IngressLoadBalancerIngress, 0, len(ips))
	for _, ip := range ips {
		want = append(want, networkingv1.IngressLoadBalancerIngress{IP: ip})
	}
	var errs []string
	for _, ing := range ings {
		if lbEqual(ing.Status.LoadBalancer.Ingress, want) {
			continue
		}
		up := ing.DeepCopy()
		up.Status.LoadBalancer.Ingress = want
		if _, err := c.cfg.Client.NetworkingV1().Ingresses(ing.Namespace).UpdateStatus(ctx, up, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Sprintf("update status of ingress %s/%s: %v", ing.Namespace, ing.Name, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func lbEqual(a, b []networkingv1.IngressLoadBalancerIngress) bool {
	return slices.EqualFunc(a, b, func(x, y networkingv1.IngressLoadBalancerIngress) bool {
		return x.IP == y.IP && x.Hostname == y.Hostname && len(x.Ports) == 0 && len(y.Ports) == 0
	})
}

// Service implements Source from the informers' caches.
func (c *Controller) Service(ns, name string) *corev1.Service {
	s, err := c.svcs.Services(ns).Get(name)
	if err != nil {
		return nil
	}
	return s
}

// EndpointSlices implements Source.
func (c *Controller) EndpointSlices(ns, service string) []*discoveryv1.EndpointSlice {
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: service})
	list, err := c.slices.EndpointSlices(ns).List(sel)
	if err != nil {
		return nil
	}
	return list
}

// Secret implements Source.
func (c *Controller) Secret(ns, name string) *corev1.Secret {
	s, err := c.secrets.Secrets(ns).Get(name)
	if err != nil {
		return nil
	}
	return s
}
