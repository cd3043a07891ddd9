package controller

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// EndpointsConfig builds the endpoints controller.
type EndpointsConfig struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Log       *slog.Logger
}

// Endpoints keeps the Endpoints and the EndpointSlice of every Service with
// a selector in line with the pods it selects: ready pods as addresses,
// others as not-ready (or ready with publishNotReadyAddresses), named
// target ports resolved per pod.
type Endpoints struct {
	cfg    EndpointsConfig
	svcs   corelisters.ServiceLister
	pods   corelisters.PodLister
	synced []cache.InformerSynced
	w      *worker
}

const managedBy = "endpointslice-controller.k8s.io"

// NewEndpoints builds the controller.
func NewEndpoints(cfg EndpointsConfig) (*Endpoints, error) {
	svcInf := cfg.Informers.Core().V1().Services()
	podInf := cfg.Informers.Core().V1().Pods()
	c := &Endpoints{cfg: cfg, svcs: svcInf.Lister(), pods: podInf.Lister()}
	c.w = newWorker("endpoints", cfg.Log, c.sync)
	if _, err := svcInf.Informer().AddEventHandler(c.w.handler()); err != nil {
		return nil, err
	}
	onPod := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				pod, _ = d.Obj.(*corev1.Pod)
			}
		}
		if pod == nil {
			return
		}
		svcs, err := c.svcs.Services(pod.Namespace).List(labels.Everything())
		if err != nil {
			return
		}
		for _, s := range svcs {
			if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(pod.Labels)) {
				c.w.queue.Add(s.Namespace + "/" + s.Name)
			}
		}
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(o, n any) { onPod(o); onPod(n) }, DeleteFunc: onPod}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{svcInf.Informer().HasSynced, podInf.Informer().HasSynced}
	return c, nil
}

// Run works until ctx ends.
func (c *Endpoints) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

type endpoint struct {
	ip, node, name string
	hostname       string
	ready          bool
	terminating    bool
	ref            *corev1.ObjectReference
}

func (c *Endpoints) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	svc, err := c.svcs.Services(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && (len(svc.Spec.Selector) == 0 || svc.Spec.Type == corev1.ServiceTypeExternalName)) {
		return nil // endpoints of selector-less services belong to their users; deleted services' go with GC
	}
	if err != nil {
		return err
	}
	if ns == metav1.NamespaceDefault && name == "kubernetes" {
		return nil
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromSet(svc.Spec.Selector))
	if err != nil {
		return err
	}
	// Group endpoints by their resolved ports (named ports may differ per pod).
	type group struct {
		ports []corev1.EndpointPort
		eps   []endpoint
	}
	groups := map[string]*group{}
	for _, p := range pods {
		if p.Status.PodIP == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		ep := endpoint{ip: p.Status.PodIP, node: p.Spec.NodeName, name: p.Name, ready: podReady(p) || svc.Spec.PublishNotReadyAddresses,
			hostname:    endpointHostname(p, svc),
			terminating: p.DeletionTimestamp != nil,
			ref:         &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID}}
		if ep.terminating && !svc.Spec.PublishNotReadyAddresses {
			ep.ready = false
		}
		var ports []corev1.EndpointPort
		for _, sp := range svc.Spec.Ports {
			port, ok := resolvePort(p, sp)
			if !ok {
				continue
			}
			ports = append(ports, corev1.EndpointPort{Name: sp.Name, Port: port, Protocol: sp.Protocol, AppProtocol: sp.AppProtocol})
		}
		k := fmt.Sprint(ports)
		if groups[k] == nil {
			groups[k] = &group{ports: ports}
		}
		groups[k].eps = append(groups[k].eps, ep)
	}
	var keys []string
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var subsets []corev1.EndpointSubset
	var all []endpoint
	var slicePorts []corev1.EndpointPort
	for _, k := range keys {
		g := groups[k]
		sort.Slice(g.eps, func(i, j int) bool { return g.eps[i].ip < g.eps[j].ip })
		ss := corev1.EndpointSubset{Ports: g.ports}
		for _, e := range g.eps {
			node := e.node
			a := corev1.EndpointAddress{IP: e.ip, Hostname: e.hostname, NodeName: &node, TargetRef: e.ref}
			if e.ready {
				ss.Addresses = append(ss.Addresses, a)
			} else {
				ss.NotReadyAddresses = append(ss.NotReadyAddresses, a)
			}
		}
		if len(g.ports) > 0 {
			subsets = append(subsets, ss)
		}
		all = append(all, g.eps...)
		slicePorts = g.ports
	}
	if err := c.writeEndpoints(ctx, svc, subsets); err != nil {
		return err
	}
	return c.writeSlice(ctx, svc, all, slicePorts)
}

// endpointHostname is the pod's hostname when the pod names the service as
// its subdomain (StatefulSet pods behind their headless service), like the
// upstream endpoints controller.
func endpointHostname(p *corev1.Pod, svc *corev1.Service) string {
	if p.Spec.Hostname != "" && p.Spec.Subdomain == svc.Name && p.Namespace == svc.Namespace {
		return p.Spec.Hostname
	}
	return ""
}

// resolvePort finds the pod port a service port targets.
func resolvePort(p *corev1.Pod, sp corev1.ServicePort) (int32, bool) {
	if sp.TargetPort.Type == intstr.Int {
		if sp.TargetPort.IntVal == 0 {
			return sp.Port, true
		}
		return sp.TargetPort.IntVal, true
	}
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == sp.TargetPort.StrVal && cp.Protocol == sp.Protocol {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}

func (c *Endpoints) writeEndpoints(ctx context.Context, svc *corev1.Service, subsets []corev1.EndpointSubset) error {
	api := c.cfg.Client.CoreV1().Endpoints(svc.Namespace)
	want := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace, Labels: svc.Labels}, Subsets: subsets}
	cur, err := api.Get(ctx, svc.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, want, metav1.CreateOptions{})
	case err == nil:
		if reflect.DeepEqual(cur.Subsets, want.Subsets) && reflect.DeepEqual(cur.Labels, want.Labels) {
			return nil
		}
		next := cur.DeepCopy()
		next.Subsets, next.Labels = subsets, svc.Labels
		_, err = api.Update(ctx, next, metav1.UpdateOptions{})
	}
	if err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("write endpoints %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return err
}

func (c *Endpoints) writeSlice(ctx context.Context, svc *corev1.Service, eps []endpoint, ports []corev1.EndpointPort) error {
	api := c.cfg.Client.DiscoveryV1().EndpointSlices(svc.Namespace)
	name := svc.Name + "-nk"
	want := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: svc.Namespace,
			Labels:          map[string]string{discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: managedBy},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(svc, corev1.SchemeGroupVersion.WithKind("Service"))}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, e := range eps {
		ready, serving, term := e.ready, e.ready || e.terminating, e.terminating
		node := e.node
		ep := discoveryv1.Endpoint{Addresses: []string{e.ip}, NodeName: &node, TargetRef: e.ref,
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &term}}
		if e.hostname != "" {
			ep.Hostname = &e.hostname
		}
		want.Endpoints = append(want.Endpoints, ep)
	}
	for _, p := range ports {
		p := p
		want.Ports = append(want.Ports, discoveryv1.EndpointPort{Name: &p.Name, Port: &p.Port, Protocol: &p.Protocol, AppProtocol: p.AppProtocol})
	}
	cur, err := api.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, want, metav1.CreateOptions{})
	case err == nil:
		if reflect.DeepEqual(cur.Endpoints, want.Endpoints) && reflect.DeepEqual(cur.Ports, want.Ports) {
			return nil
		}
		next := cur.DeepCopy()
		next.Endpoints, next.Ports = want.Endpoints, want.Ports
		_, err = api.Update(ctx, next, metav1.UpdateOptions{})
	}
	if err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("write endpointslice %s/%s: %w", svc.Namespace, name, err)
	}
	return err
}
