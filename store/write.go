package store

import (
	"encoding/binary"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// OpKind is the kind of one write in a Txn.
type OpKind int

const (
	OpCreate OpKind = iota
	OpUpdate
	OpDelete
)

// Op is one write. ExpectModRev 0 means unconditional (Update, Delete).
type Op struct {
	Kind         OpKind
	Key          string
	Value        []byte
	ExpectModRev int64
}

type writeReq struct {
	ops     []Op
	compact int64 // >0: a compaction request instead of ops
	resp    chan writeResp
}

type writeResp struct {
	kvs []KV
	err error
}

// maxBatch bounds how many requests one transaction takes.
const maxBatch = 512

// Create writes a new key; ErrExists if it is present.
func (s *Store) Create(key string, value []byte) (KV, error) {
	kvs, err := s.Txn([]Op{{Kind: OpCreate, Key: key, Value: value}})
	if err != nil {
		return KV{}, err
	}
	return kvs[0], nil
}

// Update replaces a key's value if its ModRev is expectModRev (0: any).
func (s *Store) Update(key string, value []byte, expectModRev int64) (KV, error) {
	kvs, err := s.Txn([]Op{{Kind: OpUpdate, Key: key, Value: value, ExpectModRev: expectModRev}})
	if err != nil {
		return KV{}, err
	}
	return kvs[0], nil
}

// Delete removes a key if its ModRev is expectModRev (0: any). It returns
// the last value with ModRev set to the delete's revision.
func (s *Store) Delete(key string, expectModRev int64) (KV, error) {
	kvs, err := s.Txn([]Op{{Kind: OpDelete, Key: key, ExpectModRev: expectModRev}})
	if err != nil {
		return KV{}, err
	}
	return kvs[0], nil
}

// Txn applies ops atomically: all or none. Each op gets its own revision, in
// order. It returns once the writes are durable.
func (s *Store) Txn(ops []Op) ([]KV, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	return s.submit(&writeReq{ops: ops})
}

// Compact drops the event log up to and including rev.
func (s *Store) Compact(rev int64) error {
	_, err := s.submit(&writeReq{compact: rev})
	return err
}

func (s *Store) submit(r *writeReq) ([]KV, error) {
	r.resp = make(chan writeResp, 1)
	select {
	case s.writes <- r:
	case <-s.done:
		return nil, ErrClosed
	}
	resp := <-r.resp
	return resp.kvs, resp.err
}

func (s *Store) commitLoop() {
	defer s.loopWG.Done()
	for {
		var first *writeReq
		select {
		case first = <-s.writes:
		case <-s.done:
			s.drainClosed()
			return
		}
		batch := []*writeReq{first}
	more:
		for len(batch) < maxBatch {
			select {
			case r := <-s.writes:
				batch = append(batch, r)
			default:
				break more
			}
		}
		s.commit(batch)
	}
}

func (s *Store) drainClosed() {
	for {
		select {
		case r := <-s.writes:
			r.resp <- writeResp{err: ErrClosed}
		default:
			return
		}
	}
}

// pending is one request's outcome inside a batch.
type pending struct {
	req    *writeReq
	kvs    []KV
	events []Event
	err    error
}

// commit validates every request against memory plus the writes before it
// in the batch, writes the valid ones in one transaction, then updates
// memory, feeds the watchers and acknowledges.
func (s *Store) commit(batch []*writeReq) {
	s.mu.RLock()
	rev, compacted := s.rev, s.compacted
	s.mu.RUnlock()
	overlay := map[string]*KV{} // nil value: deleted in this batch
	lookup := func(key string) *KV {
		if kv, ok := overlay[key]; ok {
			return kv
		}
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.mem[key]
	}
	results := make([]pending, len(batch))
	var compactTo int64
	for i, r := range batch {
		results[i].req = r
		if r.compact > 0 {
			if r.compact > compactTo {
				compactTo = r.compact
			}
			continue
		}
		// Validate the whole request before applying any of it (atomic Txn).
		local := map[string]*KV{}
		get := func(key string) *KV {
			if kv, ok := local[key]; ok {
				return kv
			}
			return lookup(key)
		}
		r2 := rev
		var kvs []KV
		var events []Event
		var err error
		for _, op := range r.ops {
			cur := get(op.Key)
			switch op.Kind {
			case OpCreate:
				if cur != nil {
					err = fmt.Errorf("create %q: %w", op.Key, ErrExists)
				}
			case OpUpdate, OpDelete:
				if cur == nil {
					err = fmt.Errorf("%s %q: %w", opName(op.Kind), op.Key, ErrNotFound)
				} else if op.ExpectModRev != 0 && cur.ModRev != op.ExpectModRev {
					err = fmt.Errorf("%s %q at revision %d (now %d): %w", opName(op.Kind), op.Key, op.ExpectModRev, cur.ModRev, ErrConflict)
				}
			}
			if err != nil {
				break
			}
			r2++
			switch op.Kind {
			case OpCreate:
				kv := &KV{Key: op.Key, Value: op.Value, CreateRev: r2, ModRev: r2}
				local[op.Key] = kv
				kvs = append(kvs, *kv)
				events = append(events, Event{Type: Put, KV: *kv})
			case OpUpdate:
				kv := &KV{Key: op.Key, Value: op.Value, CreateRev: cur.CreateRev, ModRev: r2}
				prev := *cur
				local[op.Key] = kv
				kvs = append(kvs, *kv)
				events = append(events, Event{Type: Put, KV: *kv, PrevKV: &prev})
			case OpDelete:
				prev := *cur
				gone := prev
				gone.ModRev = r2
				local[op.Key] = nil
				kvs = append(kvs, gone)
				events = append(events, Event{Type: Delete, KV: gone, PrevKV: &prev})
			}
		}
		if err != nil {
			results[i].err = err
			continue
		}
		rev = r2
		for k, v := range local {
			overlay[k] = v
		}
		results[i].kvs, results[i].events = kvs, events
	}
	// Keep the log within its retention as part of the same transaction.
	if auto := rev - s.retention; auto > compacted+s.retention/10 && auto > compactTo {
		compactTo = auto
	}
	if compactTo > rev {
		compactTo = rev
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		kvb, logb, meta := tx.Bucket(bucketKV), tx.Bucket(bucketLog), tx.Bucket(bucketMeta)
		for _, p := range results {
			for _, ev := range p.events {
				if ev.Type == Delete {
					if err := kvb.Delete([]byte(ev.KV.Key)); err != nil {
						return err
					}
				} else if err := kvb.Put([]byte(ev.KV.Key), encodeRecord(ev.KV)); err != nil {
					return err
				}
				if err := logb.Put(revKey(ev.KV.ModRev), encodeEvent(ev)); err != nil {
					return err
				}
			}
		}
		if err := putUint(meta, keyRev, uint64(rev)); err != nil {
			return err
		}
		if compactTo > compacted {
			c := logb.Cursor()
			for k, _ := c.First(); k != nil && int64(binary.BigEndian.Uint64(k)) <= compactTo; k, _ = c.Next() {
				if err := c.Delete(); err != nil {
					return err
				}
			}
			if err := putUint(meta, keyCompact, uint64(compactTo)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for _, p := range results {
			p.req.resp <- writeResp{err: fmt.Errorf("commit: %w", err)}
		}
		return
	}
	s.mu.Lock()
	for _, p := range results {
		for _, ev := range p.events {
			s.applyLocked(ev)
		}
	}
	if rev != s.rev {
		s.rev = rev
		close(s.revMoved)
		s.revMoved = make(chan struct{})
	}
	if compactTo > s.compacted {
		s.compacted = compactTo
	}
	for _, p := range results {
		for _, ev := range p.events {
			for w := range s.watchers {
				if w.matches(ev.KV.Key) {
					if !w.push(ev) {
						delete(s.watchers, w)
					}
				}
			}
		}
	}
	s.mu.Unlock()
	for _, p := range results {
		p.req.resp <- writeResp{kvs: p.kvs, err: p.err}
	}
}

func (s *Store) applyLocked(ev Event) {
	key := ev.KV.Key
	i := sort.SearchStrings(s.keys, key)
	present := i < len(s.keys) && s.keys[i] == key
	if ev.Type == Delete {
		delete(s.mem, key)
		if present {
			s.keys = append(s.keys[:i], s.keys[i+1:]...)
		}
		return
	}
	kv := ev.KV
	s.mem[key] = &kv
	if !present {
		s.keys = append(s.keys, "")
		copy(s.keys[i+1:], s.keys[i:])
		s.keys[i] = key
	}
}

func opName(k OpKind) string {
	switch k {
	case OpCreate:
		return "create"
	case OpUpdate:
		return "update"
	default:
		return "delete"
	}
}
