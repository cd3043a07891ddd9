//go:build unix

package cluster

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Lock is an exclusive advisory lock on a file; the daemon holds its
// profile's lock for its whole life, so "is it running" is "is it locked".
type Lock struct{ f *os.File }

// TryLock takes the lock at path without blocking; ok is false when another
// process holds it.
func TryLock(path string) (l *Lock, ok bool, err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f}, true, nil
}

// WaitLock blocks until the lock at path can be taken, then releases it at
// once: it returns when the holder is gone.
func WaitLock(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open lock %s: %w", path, err)
	}
	defer f.Close()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for lock %s: %w", path, err)
		}
		return nil
	}
}

// Release drops the lock.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// File returns the locked file (to hand the lock to a child process).
func (l *Lock) File() *os.File { return l.f }

func signalProcess(pid int, sig syscall.Signal) error {
	return syscall.Kill(pid, sig)
}

func detachedAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true}
}
