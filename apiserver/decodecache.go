package apiserver

import (
	"container/list"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

// decodeCache keeps the last decoded objects by resource, key and
// revision, so GETs of an unchanged object decode it from JSON once (watch
// events do not use it: see docs/BENCH.md). A stored
// revision never changes, so an entry is never stale; callers get deep
// copies and may change them.
type decodeCache struct {
	mu  sync.Mutex
	max int
	ll  *list.List // front: most recently used
	m   map[decodeKey]*list.Element
}

type decodeKey struct {
	res *registry.Resource // one per served version: the same key decodes per version
	key string
	rev int64
}

type decodeEntry struct {
	k   decodeKey
	obj runtime.Object
}

// decodeCacheSize bounds the cache by count (≈ 10 KB per decoded pod).
const decodeCacheSize = 1024

func newDecodeCache(max int) *decodeCache {
	return &decodeCache{max: max, ll: list.New(), m: map[decodeKey]*list.Element{}}
}

// decode is decodeStored through the cache.
func (c *decodeCache) decode(r *registry.Resource, kv store.KV) (runtime.Object, error) {
	if c == nil || kv.ModRev == 0 {
		return decodeStored(r, kv)
	}
	k := decodeKey{res: r, key: kv.Key, rev: kv.ModRev}
	c.mu.Lock()
	if e, ok := c.m[k]; ok {
		c.ll.MoveToFront(e)
		obj := e.Value.(*decodeEntry).obj
		c.mu.Unlock()
		return obj.DeepCopyObject(), nil
	}
	c.mu.Unlock()
	obj, err := decodeStored(r, kv)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok {
		c.m[k] = c.ll.PushFront(&decodeEntry{k: k, obj: obj})
		for c.ll.Len() > c.max {
			last := c.ll.Back()
			c.ll.Remove(last)
			delete(c.m, last.Value.(*decodeEntry).k)
		}
	}
	return obj.DeepCopyObject(), nil
}
