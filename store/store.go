package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the on-disk schema this code writes.
const SchemaVersion = 1

// DefaultLogRetention is how many revisions of the event log are kept when
// Options.LogRetention is 0; watches from older revisions get ErrCompacted
// and clients re-list, as with etcd's compaction.
const DefaultLogRetention = 10000

var (
	ErrNotFound  = errors.New("key not found")
	ErrExists    = errors.New("key already exists")
	ErrConflict  = errors.New("revision precondition failed")
	ErrCompacted = errors.New("revision has been compacted")
	ErrFutureRev = errors.New("revision is newer than the store's")
	ErrTooSlow   = errors.New("watcher fell too far behind")
	ErrClosed    = errors.New("store is closed")
)

var (
	bucketMeta = []byte("meta")
	bucketKV   = []byte("kv")
	bucketLog  = []byte("log")

	keySchema  = []byte("schema")
	keyRev     = []byte("rev")
	keyCompact = []byte("compact")
)

// Options configure Open.
type Options struct {
	Path         string
	Ephemeral    bool  // no fsync: for throw-away clusters
	LogRetention int64 // revisions of event log kept; 0 = DefaultLogRetention
}

// KV is one key with its revisions. Value is shared with the store's
// memory: callers must not modify it.
type KV struct {
	Key       string
	Value     []byte
	CreateRev int64
	ModRev    int64
}

// EventType says what happened to a key.
type EventType int

const (
	Put EventType = iota
	Delete
)

// Event is one change. For Delete, KV holds the last value with ModRev set
// to the delete's revision.
type Event struct {
	Type   EventType
	KV     KV
	PrevKV *KV
}

// Store is the versioned key/value store.
type Store struct {
	db        *bolt.DB
	retention int64

	mu        sync.RWMutex // guards everything below
	mem       map[string]*KV
	keys      []string // sorted keys of mem
	rev       int64
	compacted int64
	watchers  map[*Watcher]struct{}
	closed    bool
	revMoved  chan struct{} // closed and replaced each time rev advances

	writes chan *writeReq
	done   chan struct{}
	loopWG sync.WaitGroup
}

// Open opens or creates the store at opts.Path and loads it into memory.
func Open(opts Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(opts.Path), 0o700); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	db, err := bolt.Open(opts.Path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("open bbolt %s: %w", opts.Path, err)
	}
	db.NoSync = opts.Ephemeral
	s := &Store{
		db:        db,
		retention: opts.LogRetention,
		mem:       map[string]*KV{},
		watchers:  map[*Watcher]struct{}{},
		revMoved:  make(chan struct{}),
		writes:    make(chan *writeReq, 1024),
		done:      make(chan struct{}),
	}
	if s.retention <= 0 {
		s.retention = DefaultLogRetention
	}
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	s.loopWG.Add(1)
	go s.commitLoop()
	return s, nil
}

// load creates the buckets, migrates, and reads every key into memory.
func (s *Store) load() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketKV, bucketLog} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		schema := getUint(meta, keySchema)
		if schema == 0 {
			schema = SchemaVersion
			if err := putUint(meta, keySchema, SchemaVersion); err != nil {
				return err
			}
		}
		if err := migrate(tx, schema); err != nil {
			return err
		}
		s.rev = int64(getUint(meta, keyRev))
		s.compacted = int64(getUint(meta, keyCompact))
		return tx.Bucket(bucketKV).ForEach(func(k, v []byte) error {
			kv, err := decodeRecord(string(k), v)
			if err != nil {
				return err
			}
			s.mem[kv.Key] = kv
			s.keys = append(s.keys, kv.Key) // bbolt iterates in key order
			return nil
		})
	})
}

// Close stops the commit loop and every watcher, and closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for w := range s.watchers {
		w.fail(ErrClosed)
	}
	s.watchers = nil
	s.mu.Unlock()
	close(s.done)
	s.loopWG.Wait()
	return s.db.Close()
}

// Rev is the latest committed revision.
func (s *Store) Rev() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// WaitRev returns once the store has committed revision rev, or with
// ctx's error or ErrClosed. Waiters are woken by each commit, not polled.
func (s *Store) WaitRev(ctx context.Context, rev int64) error {
	for {
		s.mu.RLock()
		cur, closed, moved := s.rev, s.closed, s.revMoved
		s.mu.RUnlock()
		switch {
		case cur >= rev:
			return nil
		case closed:
			return ErrClosed
		}
		select {
		case <-moved:
		case <-s.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// CompactedRev is the oldest revision a watch can start after.
func (s *Store) CompactedRev() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.compacted
}

// Get returns the key's current value.
func (s *Store) Get(key string) (KV, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	kv, ok := s.mem[key]
	if !ok {
		return KV{}, ErrNotFound
	}
	return *kv, nil
}

// ListOptions page a List.
type ListOptions struct {
	StartKey string // inclusive; "" = from the prefix start
	Limit    int    // 0 = all
}

// List returns the keys under prefix in key order, consistent with rev.
func (s *Store) List(prefix string, opts ListOptions) (kvs []KV, rev int64, more bool, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	from := prefix
	if opts.StartKey > from {
		from = opts.StartKey
	}
	i := sort.SearchStrings(s.keys, from)
	for ; i < len(s.keys) && strings.HasPrefix(s.keys[i], prefix); i++ {
		if opts.Limit > 0 && len(kvs) == opts.Limit {
			return kvs, s.rev, true, nil
		}
		kvs = append(kvs, *s.mem[s.keys[i]])
	}
	return kvs, s.rev, false, nil
}

// Count returns how many keys are under prefix.
func (s *Store) Count(prefix string) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	lo := sort.SearchStrings(s.keys, prefix)
	hi := lo + sort.Search(len(s.keys)-lo, func(i int) bool { return !strings.HasPrefix(s.keys[lo+i], prefix) })
	return hi - lo, nil
}

func getUint(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putUint(b *bolt.Bucket, k []byte, v uint64) error {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], v)
	return b.Put(k, buf[:])
}

// migrate brings an older schema forward. Version 1 is the first.
func migrate(tx *bolt.Tx, from uint64) error {
	if from > SchemaVersion {
		return fmt.Errorf("store schema %d is newer than this nanokube understands (%d): upgrade nanokube", from, SchemaVersion)
	}
	return nil
}
