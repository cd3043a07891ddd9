package apiserver

import (
	"container/list"
	"sync"

	"github.com/nanokube/nanokube/apiserver/registry"
)

// encodeCache keeps the last encoded forms of stored objects by resource
// (one per served version), key, revision and form, so N watchers of one
// object, and repeated LISTs of unchanged objects, cost one decode and one
// encoding. A stored revision never changes, so an entry is never stale.
// Entries are shared, read-only byte slices: callers must not change them.
// The cache is bounded by the bytes it holds.
type encodeCache struct {
	mu    sync.Mutex
	max   int // bytes
	size  int
	ll    *list.List // front: most recently used
	m     map[encodeKey]*list.Element
	hits  uint64
	total uint64
}

// encodeForm is which encoding an entry holds.
type encodeForm uint8

const (
	formJSON         encodeForm = iota // the object with kind and apiVersion (GET, watch events)
	formJSONItem                       // a typed list's item: no kind and apiVersion
	formProtobuf                       // the object in protobuf (watch events)
	formProtobufItem                   // a typed list's item in protobuf: the bare message
)

type encodeKey struct {
	res  *registry.Resource
	key  string
	rev  int64
	form encodeForm
}

type encodeEntry struct {
	k   encodeKey
	raw []byte
}

// The server keeps two caches: watch events need their encodings only
// while every watcher sends the event (milliseconds), LISTs need every
// listed object's. So every write fills the small one, only LISTs fill
// the large one.
const (
	eventCacheBytes = 4 << 20  // ≈ 700 pods' events in flight
	itemCacheBytes  = 16 << 20 // ≈ 16,000 of the bench's ConfigMaps, ≈ 3,000 pods
)

func newEncodeCache(maxBytes int) *encodeCache {
	return &encodeCache{max: maxBytes, ll: list.New(), m: map[encodeKey]*list.Element{}}
}

// get returns the cached encoding of k, or encodes it with enc and keeps
// the result. rev 0 (not stored) is never cached.
func (c *encodeCache) get(k encodeKey, enc func() ([]byte, error)) ([]byte, error) {
	if c == nil || k.rev == 0 {
		return enc()
	}
	c.mu.Lock()
	c.total++
	if e, ok := c.m[k]; ok {
		c.hits++
		c.ll.MoveToFront(e)
		raw := e.Value.(*encodeEntry).raw
		c.mu.Unlock()
		return raw, nil
	}
	c.mu.Unlock()
	raw, err := enc()
	if err != nil {
		return nil, err
	}
	if len(raw) > c.max/16 {
		return raw, nil // one huge object must not empty the cache
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok {
		c.m[k] = c.ll.PushFront(&encodeEntry{k: k, raw: raw})
		c.size += len(raw)
		for c.size > c.max {
			last := c.ll.Back()
			c.ll.Remove(last)
			ent := last.Value.(*encodeEntry)
			delete(c.m, ent.k)
			c.size -= len(ent.raw)
		}
	}
	return raw, nil
}

// stats reports lookups and hits (for tests and the bench's reading).
func (c *encodeCache) stats() (hits, total uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.total
}
