// Package syncloop runs a level-triggered reconcile loop: event handlers
// add one key to a rate-limited queue, and each time it comes out the
// whole desired state is synced; a failed sync is retried with the
// queue's back-off, a good one resets it. Coalescing is the queue's: any
// number of events while a sync runs cost one more sync.
package syncloop

import (
	"context"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Key is the one key every event handler adds.
const Key = "sync"

// Run waits for the informers in synced, syncs once, then once per key
// taken from q until ctx ends; it shuts q down when it returns. onErr is
// told of every failed sync (it is retried with back-off).
func Run(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], synced []cache.InformerSynced, sync func() error, onErr func(error)) error {
	defer q.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil
	}
	stop := context.AfterFunc(ctx, q.ShutDown)
	defer stop()
	q.Add(Key)
	for {
		key, quit := q.Get()
		if quit {
			return nil
		}
		if err := sync(); err != nil {
			onErr(err)
			q.AddRateLimited(key)
		} else {
			q.Forget(key)
		}
		q.Done(key)
	}
}
