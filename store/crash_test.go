package store

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const crashEnv = "NANOKUBE_STORE_CRASH_CHILD"

// TestCrashChild is the child of TestCrashLosesNoAcknowledgedWrite: it
// writes as fast as it can and prints every acknowledged key.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		return // only meaningful as the crash test's child
	}
	s, err := Open(Options{Path: path})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				key := fmt.Sprintf("/crash/%d/%d", w, i)
				if _, err := s.Create(key, []byte("value-"+key)); err != nil {
					return
				}
				mu.Lock()
				fmt.Println("ACK", key)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestCrashLosesNoAcknowledgedWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if key, ok := strings.CutPrefix(line, "ACK "); ok {
			acked = append(acked, key)
		}
		if len(acked) == 2000 {
			// Kill mid-write: the child is still writing.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	for sc.Scan() {
		if key, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
			acked = append(acked, key)
		}
	}
	cmd.Wait()
	if len(acked) < 2000 {
		t.Fatalf("child acknowledged only %d writes before exiting", len(acked))
	}
	s := mustCreate(t, Options{Path: path})
	for _, key := range acked {
		kv, err := s.Get(key)
		if err != nil {
			t.Fatalf("acknowledged key %s lost after kill -9: %v", key, err)
		}
		if string(kv.Value) != "value-"+key {
			t.Fatalf("key %s has value %q", key, kv.Value)
		}
	}
	t.Logf("%d acknowledged writes survived kill -9 (revision %d)", len(acked), s.Rev())
}
