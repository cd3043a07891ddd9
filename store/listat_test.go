package store

import (
	"errors"
	"strings"
	"testing"
)

// TestListAt: a list at an older revision sees the keys and values of
// then, through creates, updates and deletes made since.
func TestListAt(t *testing.T) {
	s := mustCreate(t, Options{})
	for _, k := range []string{"/l/a", "/l/b", "/l/c"} {
		if _, err := s.Create(k, []byte(k+"@1")); err != nil {
			t.Fatal(err)
		}
	}
	at := s.Rev()
	b, _ := s.Get("/l/b")
	if _, err := s.Update("/l/b", []byte("/l/b@2"), b.ModRev); err != nil {
		t.Fatal(err)
	}
	c, _ := s.Get("/l/c")
	if _, err := s.Delete("/l/c", c.ModRev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("/l/0", []byte("new")); err != nil {
		t.Fatal(err)
	}
	show := func(kvs []KV) string {
		var out []string
		for _, kv := range kvs {
			out = append(out, string(kv.Value))
		}
		return strings.Join(out, " ")
	}
	cases := []struct {
		rev   int64
		opts  ListOptions
		want  string
		more  bool
		wantE error
	}{
		{at, ListOptions{}, "/l/a@1 /l/b@1 /l/c@1", false, nil},
		{at, ListOptions{StartKey: "/l/b", Limit: 1}, "/l/b@1", true, nil},
		{at, ListOptions{StartKey: "/l/c"}, "/l/c@1", false, nil},
		{at - 1, ListOptions{}, "/l/a@1 /l/b@1", false, nil},
		{s.Rev(), ListOptions{}, "new /l/a@1 /l/b@2", false, nil},
		{s.Rev() + 1, ListOptions{}, "", false, ErrFutureRev},
	}
	for _, c := range cases {
		kvs, more, err := s.ListAt("/l/", c.rev, c.opts)
		if !errors.Is(err, c.wantE) || show(kvs) != c.want || more != c.more {
			t.Errorf("ListAt(%d, %+v) = %q more=%v err=%v, want %q more=%v err=%v", c.rev, c.opts, show(kvs), more, err, c.want, c.more, c.wantE)
		}
	}
	if err := s.Compact(at); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ListAt("/l/", at-1, ListOptions{}); !errors.Is(err, ErrCompacted) {
		t.Errorf("ListAt below the compacted revision = %v, want ErrCompacted", err)
	}
	if kvs, _, err := s.ListAt("/l/", at, ListOptions{}); err != nil || show(kvs) != "/l/a@1 /l/b@1 /l/c@1" {
		t.Errorf("ListAt at the compaction point = %q, %v", show(kvs), err)
	}
}
