package controller

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// worker is the loop every controller shares: keys from a rate-limited
// queue, retried with back-off on error. The queue never hands one key to
// two goroutines; concurrency (default 1) is how many keys are handled at
// once, like kube-controller-manager's --concurrent-*-syncs.
type worker struct {
	name        string
	queue       workqueue.TypedRateLimitingInterface[string]
	sync        func(ctx context.Context, key string) error
	log         *slog.Logger
	concurrency int
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
	var wg sync.WaitGroup
	for range max(1, w.concurrency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w.next(ctx) {
			}
		}()
	}
	wg.Wait()
	return nil
}

// next handles one key; false once the queue is shut down.
func (w *worker) next(ctx context.Context) bool {
	key, quit := w.queue.Get()
	if quit {
		return false
	}
	defer w.queue.Done(key)
	if err := w.sync(ctx, key); err != nil {
		if ctx.Err() == nil {
			w.log.Info("retrying", "controller", w.name, "key", key, "err", err)
		}
		w.queue.AddRateLimited(key)
	} else {
		w.queue.Forget(key)
	}
	return true
}

func jsonMerge(v any) ([]byte, error) { return json.Marshal(v) }
