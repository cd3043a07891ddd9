package controller

import (
	"context"
	"encoding/json"
	"log/slog"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// worker is the loop every controller shares: keys from a rate-limited
// queue, handled one at a time, retried with back-off on error.
type worker struct {
	name  string
	queue workqueue.TypedRateLimitingInterface[string]
	sync  func(ctx context.Context, key string) error
	log   *slog.Logger
}

func newWorker(name string, log *slog.Logger, sync func(context.Context, string) error) *worker {
	return &worker{
		name:  name,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: name}),
		sync:  sync,
		log:   log,
	}
}

// enqueue adds the object's namespace/name key.
func (w *worker) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err == nil {
		w.queue.Add(key)
	}
}

// handler enqueues on every add, update and delete.
func (w *worker) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    w.enqueue,
		UpdateFunc: func(_, obj any) { w.enqueue(obj) },
		DeleteFunc: w.enqueue,
	}
}

// run processes keys until ctx ends, after the informers have synced.
func (w *worker) run(ctx context.Context, synced ...cache.InformerSynced) error {
	defer w.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil
	}
	go func() {
		<-ctx.Done()
		w.queue.ShutDown()
	}()
	for {
		key, quit := w.queue.Get()
		if quit {
			return nil
		}
		if err := w.sync(ctx, key); err != nil {
			if ctx.Err() == nil {
				w.log.Info("retrying", "controller", w.name, "key", key, "err", err)
			}
			w.queue.AddRateLimited(key)
		} else {
			w.queue.Forget(key)
		}
		w.queue.Done(key)
	}
}

func jsonMerge(v any) ([]byte, error) { return json.Marshal(v) }
