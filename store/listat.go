package store

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// ListAt is List as the store was at revision rev: the current keys with
// the logged events after rev undone (each key takes the value its first
// later event replaced; no previous value means it did not exist yet).
// rev below the compacted revision gives ErrCompacted, above the current
// one ErrFutureRev. It serves paged lists that continue at their first
// page's revision and lists at an exact resourceVersion.
func (s *Store) ListAt(prefix string, rev int64, opts ListOptions) (kvs []KV, more bool, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch {
	case rev > s.rev:
		return nil, false, fmt.Errorf("list at revision %d (current %d): %w", rev, s.rev, ErrFutureRev)
	case rev < s.compacted:
		return nil, false, fmt.Errorf("list at revision %d (compacted at %d): %w", rev, s.compacted, ErrCompacted)
	}
	from := prefix
	if opts.StartKey > from {
		from = opts.StartKey
	}
	// then holds, for each key changed after rev, its value at rev (nil:
	// absent at rev).
	then := map[string]*KV{}
	if rev < s.rev {
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketLog).Cursor()
			for k, v := c.Seek(revKey(rev + 1)); k != nil && int64(binary.BigEndian.Uint64(k)) <= s.rev; k, v = c.Next() {
				ev, err := decodeEvent(v)
				if err != nil {
					return err
				}
				key := ev.KV.Key
				if !strings.HasPrefix(key, prefix) || key < from {
					continue
				}
				if _, seen := then[key]; !seen {
					then[key] = ev.PrevKV
				}
			}
			return nil
		})
		if err != nil {
			return nil, false, fmt.Errorf("read event log for a list at revision %d: %w", rev, err)
		}
	}
	keys := make([]string, 0, len(then))
	for i := sort.SearchStrings(s.keys, from); i < len(s.keys) && strings.HasPrefix(s.keys[i], prefix); i++ {
		if _, changed := then[s.keys[i]]; !changed {
			keys = append(keys, s.keys[i])
		}
	}
	for k, kv := range then {
		if kv != nil {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if opts.Limit > 0 && len(kvs) == opts.Limit {
			return kvs, true, nil
		}
		if kv, changed := then[k]; changed {
			kvs = append(kvs, *kv)
		} else {
			kvs = append(kvs, *s.mem[k])
		}
	}
	return kvs, false, nil
}
