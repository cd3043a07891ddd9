package controller

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// EventTTLConfig builds the event expiry.
type EventTTLConfig struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Log       *slog.Logger
	// TTL: how long an event lives after it was last recorded
	// (kube-apiserver's --event-ttl, 1h).
	TTL time.Duration
}

// EventTTL deletes events an hour after their last occurrence, as
// kube-apiserver's event TTL does, so the store does not grow without
// bound. Repeats of an event are folded into one object by the
// recorders (client-go's correlator: count, firstTimestamp and
// lastTimestamp), and each repeat extends its life.
type EventTTL struct {
	cfg    EventTTLConfig
	events corelisters.EventLister
	synced []cache.InformerSynced
	w      *worker
}

// NewEventTTL builds the controller.
func NewEventTTL(cfg EventTTLConfig) (*EventTTL, error) {
	if cfg.TTL == 0 {
		cfg.TTL = time.Hour
	}
	inf := cfg.Informers.Core().V1().Events()
	c := &EventTTL{cfg: cfg, events: inf.Lister()}
	c.w = newWorker("eventttl", cfg.Log, c.sync)
	schedule := func(obj any) {
		if e, ok := obj.(*corev1.Event); ok {
			if key, err := cache.MetaNamespaceKeyFunc(e); err == nil {
				c.w.queue.AddAfter(key, time.Until(lastRecorded(e).Add(cfg.TTL)))
			}
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: schedule, UpdateFunc: func(_, o any) { schedule(o) }}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{inf.Informer().HasSynced}
	return c, nil
}

// Run works until ctx ends.
func (c *EventTTL) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

// lastRecorded is when the event last happened.
func lastRecorded(e *corev1.Event) time.Time {
	t := e.CreationTimestamp.Time
	for _, c := range []time.Time{e.LastTimestamp.Time, e.EventTime.Time} {
		if c.After(t) {
			t = c
		}
	}
	if e.Series != nil && e.Series.LastObservedTime.After(t) {
		t = e.Series.LastObservedTime.Time
	}
	return t
}

func (c *EventTTL) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	e, err := c.events.Events(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if left := time.Until(lastRecorded(e).Add(c.cfg.TTL)); left > 0 {
		c.w.queue.AddAfter(key, left)
		return nil
	}
	rv := e.ResourceVersion
	err = c.cfg.Client.CoreV1().Events(ns).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("expire event %s: %w", key, err)
	}
	return nil
}
