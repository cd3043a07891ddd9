package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

func TestCRUDAndPreconditions(t *testing.T) {
	s := mustCreate(t, Options{})
	kv, err := s.Create("/a/1", []byte("one"))
	if err != nil || kv.CreateRev != 1 || kv.ModRev != 1 {
		t.Fatalf("Create = %+v, %v", kv, err)
	}
	if _, err := s.Create("/a/1", []byte("again")); !errors.Is(err, ErrExists) {
		t.Errorf("second Create = %v, want ErrExists", err)
	}
	if _, err := s.Update("/a/1", []byte("x"), 7); !errors.Is(err, ErrConflict) {
		t.Errorf("Update with stale rev = %v, want ErrConflict", err)
	}
	kv, err = s.Update("/a/1", []byte("uno"), 1)
	if err != nil || kv.CreateRev != 1 || kv.ModRev != 2 || string(kv.Value) != "uno" {
		t.Fatalf("Update = %+v, %v", kv, err)
	}
	if _, err := s.Update("/a/none", []byte("x"), 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update of a missing key = %v, want ErrNotFound", err)
	}
	got, err := s.Get("/a/1")
	if err != nil || string(got.Value) != "uno" || got.ModRev != 2 {
		t.Errorf("Get = %+v, %v", got, err)
	}
	if _, err := s.Delete("/a/1", 1); !errors.Is(err, ErrConflict) {
		t.Errorf("Delete with stale rev = %v, want ErrConflict", err)
	}
	del, err := s.Delete("/a/1", 2)
	if err != nil || del.ModRev != 3 || string(del.Value) != "uno" {
		t.Errorf("Delete = %+v, %v", del, err)
	}
	if _, err := s.Get("/a/1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after delete = %v, want ErrNotFound", err)
	}
	if s.Rev() != 3 {
		t.Errorf("Rev = %d, want 3", s.Rev())
	}
}

func TestListPagingAndCount(t *testing.T) {
	s := mustCreate(t, Options{})
	for _, k := range []string{"/p/c", "/p/a", "/q/z", "/p/b", "/pp/x"} {
		if _, err := s.Create(k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	kvs, rev, more, err := s.List("/p/", ListOptions{})
	if err != nil || more || rev != 5 || len(kvs) != 3 || kvs[0].Key != "/p/a" || kvs[2].Key != "/p/c" {
		t.Fatalf("List = %v rev %d more %v err %v", kvs, rev, more, err)
	}
	page, _, more, _ := s.List("/p/", ListOptions{Limit: 2})
	if len(page) != 2 || !more || page[1].Key != "/p/b" {
		t.Fatalf("first page = %v more %v", page, more)
	}
	page, _, more, _ = s.List("/p/", ListOptions{StartKey: page[1].Key + "\x00", Limit: 2})
	if len(page) != 1 || more || page[0].Key != "/p/c" {
		t.Fatalf("second page = %v more %v", page, more)
	}
	if n, _ := s.Count("/p/"); n != 3 {
		t.Errorf("Count(/p/) = %d, want 3", n)
	}
	if n, _ := s.Count("/nothing/"); n != 0 {
		t.Errorf("Count(/nothing/) = %d, want 0", n)
	}
}

func TestTxnIsAtomic(t *testing.T) {
	s := mustCreate(t, Options{})
	if _, err := s.Create("/exists", []byte("x")); err != nil {
		t.Fatal(err)
	}
	_, err := s.Txn([]Op{{Kind: OpCreate, Key: "/new", Value: []byte("n")}, {Kind: OpCreate, Key: "/exists"}})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("Txn = %v, want ErrExists", err)
	}
	if _, err := s.Get("/new"); !errors.Is(err, ErrNotFound) {
		t.Errorf("failed Txn left /new behind")
	}
	if s.Rev() != 1 {
		t.Errorf("failed Txn moved the revision to %d", s.Rev())
	}
	kvs, err := s.Txn([]Op{{Kind: OpCreate, Key: "/new", Value: []byte("n")}, {Kind: OpUpdate, Key: "/exists", Value: []byte("y"), ExpectModRev: 1}})
	if err != nil || kvs[0].ModRev != 2 || kvs[1].ModRev != 3 {
		t.Fatalf("Txn = %+v, %v", kvs, err)
	}
}

func TestConcurrentWritersAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 32, 50
	revs := make(chan int64, writers*each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				kv, err := s.Create(fmt.Sprintf("/c/%02d/%03d", w, i), []byte("v"))
				if err != nil {
					t.Error(err)
					return
				}
				revs <- kv.ModRev
			}
		}()
	}
	wg.Wait()
	close(revs)
	seen := map[int64]bool{}
	for r := range revs {
		if seen[r] {
			t.Fatalf("revision %d given twice", r)
		}
		seen[r] = true
	}
	if len(seen) != writers*each || s.Rev() != writers*each {
		t.Fatalf("got %d revisions, Rev %d; want %d", len(seen), s.Rev(), writers*each)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustCreate(t, Options{Path: path})
	if n, _ := s.Count("/c/"); n != writers*each {
		t.Errorf("after reopen Count = %d, want %d", n, writers*each)
	}
	kv, err := s.Create("/after", nil)
	if err != nil || kv.ModRev != writers*each+1 {
		t.Errorf("revision after reopen = %d, %v; want %d", kv.ModRev, err, writers*each+1)
	}
}

func TestWatchOrderReplayAndCompaction(t *testing.T) {
	s := mustCreate(t, Options{})
	for i := range 5 {
		if _, err := s.Create(fmt.Sprintf("/w/%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Create("/other/x", nil); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	w, err := s.Watch(ctx, "/w/", 2) // replays revisions 3,4,5, then live
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := s.Update("/w/0", []byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete("/w/1", 0); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ EventType
		key string
		rev int64
	}{{Put, "/w/2", 3}, {Put, "/w/3", 4}, {Put, "/w/4", 5}, {Put, "/w/0", 7}, {Delete, "/w/1", 8}}
	for _, wnt := range want {
		ev := next(t, w)
		if ev.Type != wnt.typ || ev.KV.Key != wnt.key || ev.KV.ModRev != wnt.rev {
			t.Fatalf("event = %v %s@%d, want %v %s@%d", ev.Type, ev.KV.Key, ev.KV.ModRev, wnt.typ, wnt.key, wnt.rev)
		}
		if wnt.rev == 7 && (ev.PrevKV == nil || string(ev.PrevKV.Value) != "v") {
			t.Errorf("update event PrevKV = %+v", ev.PrevKV)
		}
	}
	if err := s.Compact(5); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Watch(ctx, "/w/", 4); !errors.Is(err, ErrCompacted) {
		t.Errorf("Watch from a compacted revision = %v, want ErrCompacted", err)
	}
	w2, err := s.Watch(ctx, "/w/", 5)
	if err != nil {
		t.Fatalf("Watch at the compaction point = %v", err)
	}
	defer w2.Stop()
	if ev := next(t, w2); ev.KV.ModRev != 7 {
		t.Errorf("first event after compaction point has revision %d, want 7", ev.KV.ModRev)
	}
}

func TestSlowWatcherIsCutOff(t *testing.T) {
	s := mustCreate(t, Options{Ephemeral: true})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w, err := s.Watch(ctx, "/", s.Rev())
	if err != nil {
		t.Fatal(err)
	}
	// Never read: writers must not block, and the watcher ends with ErrTooSlow.
	ops := make([]Op, 1000)
	for i := 0; i <= maxQueued/len(ops)+1; i++ {
		for j := range ops {
			ops[j] = Op{Kind: OpCreate, Key: fmt.Sprintf("/k/%d/%d", i, j)}
		}
		if _, err := s.Txn(ops); err != nil {
			t.Fatal(err)
		}
	}
	for range w.Events() {
	}
	if !errors.Is(w.Err(), ErrTooSlow) {
		t.Errorf("slow watcher ended with %v, want ErrTooSlow", w.Err())
	}
}

func TestAutoCompaction(t *testing.T) {
	s := mustCreate(t, Options{LogRetention: 10})
	for i := range 30 {
		if _, err := s.Create(fmt.Sprintf("/k/%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if c := s.CompactedRev(); c < 10 || c > 20 {
		t.Errorf("CompactedRev = %d after 30 writes with retention 10", c)
	}
	if _, err := s.Watch(t.Context(), "/", 1); !errors.Is(err, ErrCompacted) {
		t.Errorf("Watch from revision 1 = %v, want ErrCompacted", err)
	}
}
