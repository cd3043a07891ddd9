package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// maxQueued bounds the events waiting for one watcher; past it the watcher
// is ended with ErrTooSlow so that it never blocks writers or grows memory.
const maxQueued = 100_000

// Watcher delivers the events under one prefix in revision order.
type Watcher struct {
	prefix string
	ch     chan Event

	mu     sync.Mutex
	queue  []Event
	err    error
	ended  bool
	notify chan struct{}
	stop   chan struct{}
	once   sync.Once
	done   chan struct{}
}

// Watch streams every event under prefix with a revision above afterRev.
// Older events are replayed from the log first; afterRev below the
// compacted revision gives ErrCompacted. The watcher ends when ctx is done,
// Stop is called, the store closes or the consumer falls too far behind.
func (s *Store) Watch(ctx context.Context, prefix string, afterRev int64) (*Watcher, error) {
	w := &Watcher{
		prefix: prefix,
		ch:     make(chan Event, 64),
		notify: make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if afterRev < s.compacted {
		s.mu.Unlock()
		return nil, fmt.Errorf("watch from revision %d (compacted at %d): %w", afterRev, s.compacted, ErrCompacted)
	}
	if afterRev < s.rev {
		// Replay under the lock, so no live event can slip in between.
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketLog).Cursor()
			for k, v := c.Seek(revKey(afterRev + 1)); k != nil; k, v = c.Next() {
				if int64(binary.BigEndian.Uint64(k)) > s.rev {
					break
				}
				ev, err := decodeEvent(v)
				if err != nil {
					return err
				}
				if strings.HasPrefix(ev.KV.Key, prefix) {
					w.queue = append(w.queue, ev)
				}
			}
			return nil
		})
		if err != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("replay watch log: %w", err)
		}
	}
	s.watchers[w] = struct{}{}
	s.mu.Unlock()
	go w.run(ctx, s)
	w.signal()
	return w, nil
}

// Events is closed when the watcher ends; then Err says why.
func (w *Watcher) Events() <-chan Event { return w.ch }

// Err is the reason the watcher ended (nil after Stop or ctx end).
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Stop ends the watcher and waits for its goroutine.
func (w *Watcher) Stop() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

func (w *Watcher) matches(key string) bool { return strings.HasPrefix(key, w.prefix) }

// push queues ev; false means the watcher is ended and must be dropped.
// Called with the store lock held.
func (w *Watcher) push(ev Event) bool {
	w.mu.Lock()
	if w.ended {
		w.mu.Unlock()
		return false
	}
	if len(w.queue) >= maxQueued {
		w.mu.Unlock()
		w.fail(ErrTooSlow)
		return false
	}
	w.queue = append(w.queue, ev)
	w.mu.Unlock()
	w.signal()
	return true
}

func (w *Watcher) signal() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// fail ends the watcher with err.
func (w *Watcher) fail(err error) {
	w.mu.Lock()
	if !w.ended {
		w.ended, w.err = true, err
	}
	w.mu.Unlock()
	w.once.Do(func() { close(w.stop) })
}

func (w *Watcher) run(ctx context.Context, s *Store) {
	defer close(w.done)
	defer close(w.ch)
	defer func() {
		w.mu.Lock()
		w.ended = true
		w.queue = nil
		w.mu.Unlock()
		s.mu.Lock()
		if s.watchers != nil {
			delete(s.watchers, w)
		}
		s.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.stop:
			return
		case <-w.notify:
		}
		w.mu.Lock()
		batch := w.queue
		w.queue = nil
		w.mu.Unlock()
		for _, ev := range batch {
			select {
			case w.ch <- ev:
			case <-ctx.Done():
				return
			case <-w.stop:
				return
			}
		}
	}
}
