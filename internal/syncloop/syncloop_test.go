package syncloop

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// TestRunRetriesAndStops: the first sync runs without an event, a failed
// sync is retried, an event after a good one syncs again, and the loop
// returns when its context ends.
func TestRunRetriesAndStops(t *testing.T) {
	q := workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Millisecond, 10*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan int, 10)
	n := 0
	sync := func() error {
		n++
		calls <- n
		if n == 1 {
			return errors.New("first sync fails")
		}
		return nil
	}
	var failures []error
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, q, []cache.InformerSynced{func() bool { return true }}, sync, func(err error) { failures = append(failures, err) })
	}()
	wait := func(want int) {
		t.Helper()
		select {
		case got := <-calls:
			if got != want {
				t.Fatalf("sync call %d, want %d", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("sync call %d did not come", want)
		}
	}
	wait(1) // initial
	wait(2) // retry after the failure
	q.Add(Key)
	wait(3) // an event
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if len(failures) != 1 {
		t.Fatalf("failures reported: %v", failures)
	}
	if !q.ShuttingDown() {
		t.Fatal("queue not shut down")
	}
}
