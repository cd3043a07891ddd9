package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestProfileFlagBeforeOrAfterCommand: -p works in front of a command (as
// docker-env's hint writes it) and after it.
func TestProfileFlagBeforeOrAfterCommand(t *testing.T) {
	t.Setenv("NANOKUBE_HOME", t.TempDir())
	t.Setenv("NANOKUBE_PROFILE", "")
	os.Unsetenv("NANOKUBE_PROFILE")
	for _, args := range [][]string{
		{"nanokube", "-p", "dev", "status"},
		{"nanokube", "status", "-p", "dev"},
		{"nanokube", "--profile", "dev", "docker-env"},
		{"nanokube", "-p", "dev", "image", "ls"},
	} {
		var out, errOut bytes.Buffer
		err := newApp(&out, &errOut).RunContext(context.Background(), args)
		if err == nil || !strings.Contains(err.Error(), `profile "dev"`) {
			t.Errorf("%v: err = %v, want one about profile \"dev\"", args, err)
		}
	}
}
