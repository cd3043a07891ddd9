package agent

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// objectKind is a kind of object a pod's volumes read.
type objectKind string

const (
	kindConfigMap objectKind = "configmap"
	kindSecret    objectKind = "secret"
	kindPVC       objectKind = "persistentvolumeclaim"
)

type objectRef struct {
	kind      objectKind
	namespace string
	name      string
}

// objectWatches is kubelet's watch-based object manager: one watch (a
// field-selected informer) per ConfigMap, Secret or claim that a pod on
// this node references, shared by the pods and ended with the last of
// them. A change enqueues the pods, so their volumes follow the object
// without any polling.
type objectWatches struct {
	client  kubernetes.Interface
	changed func(podKey string)

	mu      sync.Mutex
	watches map[objectRef]*objectWatch
	byPod   map[string]map[objectRef]bool
	running sync.WaitGroup
	closed  bool
}

type objectWatch struct {
	informer cache.SharedIndexInformer
	stop     chan struct{}
	pods     map[string]bool
}

func newObjectWatches(client kubernetes.Interface, changed func(podKey string)) *objectWatches {
	return &objectWatches{client: client, changed: changed, watches: map[objectRef]*objectWatch{}, byPod: map[string]map[objectRef]bool{}}
}

// track makes refs the objects podKey depends on: new ones get a watch,
// ones it no longer names are released.
func (o *objectWatches) track(podKey string, refs []objectRef) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	want := map[objectRef]bool{}
	for _, r := range refs {
		want[r] = true
	}
	for r := range o.byPod[podKey] {
		if !want[r] {
			o.releaseLocked(podKey, r)
		}
	}
	for r := range want {
		w := o.watches[r]
		if w == nil {
			w = o.startLocked(r)
			o.watches[r] = w
		}
		w.pods[podKey] = true
	}
	o.byPod[podKey] = want
}

// untrack releases everything podKey held.
func (o *objectWatches) untrack(podKey string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for r := range o.byPod[podKey] {
		o.releaseLocked(podKey, r)
	}
	delete(o.byPod, podKey)
}

func (o *objectWatches) releaseLocked(podKey string, r objectRef) {
	w := o.watches[r]
	if w == nil {
		return
	}
	delete(w.pods, podKey)
	if len(w.pods) == 0 {
		close(w.stop)
		delete(o.watches, r)
	}
}

func (o *objectWatches) startLocked(r objectRef) *objectWatch {
	sel := func(opts *metav1.ListOptions) {
		opts.FieldSelector = fields.OneTermEqualSelector("metadata.name", r.name).String()
	}
	var lw *cache.ListWatch
	var obj runtime.Object
	switch r.kind {
	case kindConfigMap:
		lw, obj = cache.NewFilteredListWatchFromClient(o.client.CoreV1().RESTClient(), "configmaps", r.namespace, sel), &corev1.ConfigMap{}
	case kindSecret:
		lw, obj = cache.NewFilteredListWatchFromClient(o.client.CoreV1().RESTClient(), "secrets", r.namespace, sel), &corev1.Secret{}
	default:
		lw, obj = cache.NewFilteredListWatchFromClient(o.client.CoreV1().RESTClient(), "persistentvolumeclaims", r.namespace, sel), &corev1.PersistentVolumeClaim{}
	}
	w := &objectWatch{informer: cache.NewSharedIndexInformer(lw, obj, 0, cache.Indexers{}), stop: make(chan struct{}), pods: map[string]bool{}}
	notify := func() {
		o.mu.Lock()
		pods := make([]string, 0, len(w.pods))
		for p := range w.pods {
			pods = append(pods, p)
		}
		o.mu.Unlock()
		for _, p := range pods {
			o.changed(p)
		}
	}
	w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(old, cur any) { notify() },
		DeleteFunc: func(any) { notify() },
	})
	o.running.Add(1)
	go func() {
		defer o.running.Done()
		w.informer.Run(w.stop)
	}()
	return w
}

// get returns the current object: from the watch once it has listed, from
// the API before that. A missing object is a NotFound error named like
// kubelet's (`secret "x" not found`).
func (o *objectWatches) get(ctx context.Context, r objectRef) (runtime.Object, error) {
	o.mu.Lock()
	w := o.watches[r]
	o.mu.Unlock()
	notFound := apierrors.NewNotFound(schema.GroupResource{Resource: string(r.kind)}, r.name)
	if r.kind == kindPVC {
		notFound = apierrors.NewNotFound(schema.GroupResource{Resource: "persistentvolumeclaims"}, r.name)
	}
	if w != nil && w.informer.HasSynced() {
		obj, ok, err := w.informer.GetStore().GetByKey(r.namespace + "/" + r.name)
		switch {
		case err != nil:
			return nil, err
		case !ok:
			return nil, notFound
		}
		return obj.(runtime.Object), nil
	}
	var obj runtime.Object
	var err error
	switch r.kind {
	case kindConfigMap:
		obj, err = o.client.CoreV1().ConfigMaps(r.namespace).Get(ctx, r.name, metav1.GetOptions{})
	case kindSecret:
		obj, err = o.client.CoreV1().Secrets(r.namespace).Get(ctx, r.name, metav1.GetOptions{})
	default:
		obj, err = o.client.CoreV1().PersistentVolumeClaims(r.namespace).Get(ctx, r.name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return nil, notFound
	}
	return obj, err
}

// close ends every watch and waits for them.
func (o *objectWatches) close() {
	o.mu.Lock()
	o.closed = true
	for r, w := range o.watches {
		close(w.stop)
		delete(o.watches, r)
	}
	o.byPod = map[string]map[objectRef]bool{}
	o.mu.Unlock()
	o.running.Wait()
}
