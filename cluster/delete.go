package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Delete removes everything the profile made: its daemon, containers,
// images namespace, network namespaces, links, routes, firewall rules,
// mounts, kubeconfig entries and state directory.
func Delete(ctx context.Context, p Profile, exe string, out io.Writer) error {
	if !p.Exists() {
		if _, err := os.Stat(p.Dir); err != nil {
			fmt.Fprintf(out, "🤷  profile %q does not exist, nothing to delete\n", p.Name)
			return nil
		}
	}
	if err := requireRoot(); err != nil {
		return err
	}
	begin := time.Now()
	fmt.Fprintf(out, "🔥  Deleting nanokube profile %q ...\n", p.Name)
	if pid, running := DaemonRunning(p); running {
		if err := os.WriteFile(p.DeletingFile(), nil, 0o600); err != nil {
			return fmt.Errorf("delete %q: mark the profile: %w", p.Name, err)
		}
		if err := stopDaemon(ctx, p, pid); err != nil {
			return fmt.Errorf("delete %q: %w", p.Name, err)
		}
	}
	// The Linux-specific teardown lives in the daemon package; run it through
	// the binary so this package stays portable.
	cmd := exec.CommandContext(ctx, exe, "daemon", "--profile", p.Name, "--cleanup")
	cmd.Env = append(os.Environ(), "NANOKUBE_HOME="+p.Home)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("delete %q: clean up host resources: %w: %s", p.Name, err, strings.TrimSpace(string(b)))
	}
	if err := RemoveKubeconfig(KubeconfigPath(), p.Name); err != nil {
		return fmt.Errorf("delete %q: remove kubeconfig entries: %w", p.Name, err)
	}
	if err := os.RemoveAll(p.Dir); err != nil {
		return fmt.Errorf("delete %q: remove %s: %w", p.Name, p.Dir, err)
	}
	fmt.Fprintf(out, "💀  Removed all traces of %q in %s\n", p.Name, formatElapsed(time.Since(begin)))
	return nil
}

// DeleteAll deletes every profile; purge also removes $NANOKUBE_HOME.
func DeleteAll(ctx context.Context, home, exe string, purge bool, out io.Writer) error {
	names, err := ListProfiles(home)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := Delete(ctx, NewProfile(home, n), exe, out); err != nil {
			return err
		}
	}
	if purge {
		if err := os.RemoveAll(home); err != nil {
			return fmt.Errorf("purge %s: %w", home, err)
		}
		fmt.Fprintf(out, "🔥  Purged %s\n", home)
	}
	return nil
}
