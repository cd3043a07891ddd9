package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestWaitRev: a waiter returns at the commit that reaches its revision,
// and with the context's error when none does.
func TestWaitRev(t *testing.T) {
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "store.db"), Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := s.Rev() + 2
	done := make(chan error, 1)
	go func() { done <- s.WaitRev(t.Context(), want) }()
	if _, err := s.Create("/a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("WaitRev(%d) returned at revision %d: %v", want, s.Rev(), err)
	default:
	}
	if _, err := s.Create("/b", []byte("1")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("WaitRev(%d) still waiting at revision %d", want, s.Rev())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := s.WaitRev(ctx, s.Rev()+1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitRev past the last commit = %v, want DeadlineExceeded", err)
	}
}
