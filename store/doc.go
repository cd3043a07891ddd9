// Package store is nanokube's versioned key/value store: bbolt on disk for
// durability, an in-memory copy for every read, and watches fed from the
// commit loop. It knows nothing about Kubernetes types.
//
// Every write bumps one global revision (the Kubernetes resourceVersion).
// Writes from many goroutines are group-committed: one loop takes every
// waiting write, applies them in one bbolt transaction with one fsync, and
// only then acknowledges them. Reads never touch the disk.
//
// On-disk schema (version 1):
//
//	meta                      bucket
//	├── schema   → uint64     schema version (SchemaVersion)
//	├── rev      → uint64     current revision
//	└── compact  → uint64     compacted revision: watches from older revisions get ErrCompacted
//	kv                        bucket
//	└── <key>    → record     createRev uint64 | modRev uint64 | value bytes
//	log                       bucket, one entry per revision, for watch replay
//	└── <rev as 8-byte BE> → event  type byte | key | value | createRev | prev (flag, createRev, modRev, value)
//
// All integers are big-endian; strings and byte slices in events are
// uvarint-length-prefixed. Forward migrations live in migrate.go and run at
// Open when the stored schema is older than SchemaVersion.
package store
