//go:build e2e

package e2e

import (
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestIntegrationLifecycle: start → kubectl version → a stored object →
// stop → start keeps it → kill -9 → start keeps it → delete leaves nothing.
func TestIntegrationLifecycle(t *testing.T) {
	l := theLab
	const p = "e2e-life"
	out := l.startProfile(t, p).stdout
	if !strings.Contains(out, "Done!") {
		t.Fatalf("start did not report success:\n%s", out)
	}

	v := l.kubectl(t, p, "version", "-o", "json")
	if !strings.Contains(v, `"gitVersion": "v1.37.`) {
		t.Errorf("kubectl version does not show the server at v1.37.x:\n%s", v)
	}
	if got := l.kubectl(t, p, "get", "--raw", "/readyz"); got != "ok" {
		t.Errorf("/readyz = %q, want ok", got)
	}
	ip := strings.TrimSpace(l.nanokube(t, "ip", "-p", p).stdout)
	if !strings.HasPrefix(ip, "192.168.") || !strings.HasSuffix(ip, ".2") {
		t.Errorf("nanokube ip = %q, want 192.168.x.2", ip)
	}
	st := l.nanokube(t, "status", "-p", p).stdout
	for _, want := range []string{"host: Running", "daemon: Running", "apiserver: Running", "kubeconfig: Configured"} {
		if !strings.Contains(st, want) {
			t.Errorf("status lacks %q:\n%s", want, st)
		}
	}
	if again := l.nanokube(t, "start", "-p", p).stdout; !strings.Contains(again, "already running") {
		t.Errorf("second start does not say it is running:\n%s", again)
	}

	l.kubectl(t, p, "create", "configmap", "survivor", "--from-literal=key=kept")
	l.nanokube(t, "stop", "-p", p)
	r := l.nanokubeResult(t, "status", "-p", p)
	if r.code != 7 || !strings.Contains(r.stdout, "host: Stopped") {
		t.Errorf("status of a stopped profile: want exit 7 and host: Stopped, got %s", r)
	}
	l.nanokube(t, "start", "-p", p)
	if got := l.kubectl(t, p, "get", "configmap", "survivor", "-o", "jsonpath={.data.key}"); got != "kept" {
		t.Errorf("after stop/start the configmap holds %q, want kept", got)
	}

	// kill -9 loses no acknowledged write.
	l.kubectl(t, p, "create", "configmap", "acked", "--from-literal=key=durable")
	pid := daemonPid(t, p)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 the daemon: %v", err)
	}
	waitGone(t, pid)
	l.nanokube(t, "start", "-p", p)
	if got := l.kubectl(t, p, "get", "configmap", "acked", "-o", "jsonpath={.data.key}"); got != "durable" {
		t.Errorf("after kill -9 the configmap holds %q, want durable", got)
	}
}

// TestIntegrationTwoProfiles: two clusters at once do not interfere, and
// deleting one leaves the other working.
func TestIntegrationTwoProfiles(t *testing.T) {
	l := theLab
	l.startProfile(t, "e2e-one")
	l.nanokube(t, "start", "-p", "e2e-two")
	ip1 := strings.TrimSpace(l.nanokube(t, "ip", "-p", "e2e-one").stdout)
	ip2 := strings.TrimSpace(l.nanokube(t, "ip", "-p", "e2e-two").stdout)
	if ip1 == ip2 {
		t.Fatalf("both profiles got node IP %s", ip1)
	}
	l.kubectl(t, "e2e-one", "create", "namespace", "only-in-one")
	if r := l.kubectlResult(t, "e2e-two", "get", "namespace", "only-in-one"); r.code == 0 {
		t.Errorf("profile e2e-two sees e2e-one's namespace")
	}
	list := l.nanokube(t, "profile", "list").stdout
	for _, want := range []string{"e2e-one", "e2e-two", "Running"} {
		if !strings.Contains(list, want) {
			t.Errorf("profile list lacks %q:\n%s", want, list)
		}
	}
	l.deleteProfile(t, "e2e-two")
	if got := l.kubectl(t, "e2e-one", "get", "namespace", "only-in-one", "-o", "name"); strings.TrimSpace(got) != "namespace/only-in-one" {
		t.Errorf("e2e-one lost its namespace after e2e-two was deleted: %q", got)
	}
}

// TestIntegrationCLIErrors: mistakes get one clear line and a non-zero exit.
func TestIntegrationCLIErrors(t *testing.T) {
	l := theLab
	cases := []struct {
		name string
		args []string
		cred *syscall.Credential
		want string
	}{
		{"unknown flag", []string{"start", "--nodez=2"}, nil, "unknown flag -nodez"},
		{"bad driver", []string{"start", "-p", "e2e-bad", "--driver=vbox"}, nil, `unknown driver "vbox"`},
		{"bad profile name", []string{"start", "-p", "Bad_Name"}, nil, "invalid profile name"},
		{"missing profile", []string{"stop", "-p", "e2e-nope"}, nil, `profile "e2e-nope" does not exist`},
		{"not root", []string{"start", "-p", "e2e-user"}, &syscall.Credential{Uid: 65534, Gid: 65534}, "nanokube must run as root: try sudo"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := l.run(t.Context(), c.cred, l.binary, c.args...)
			if r.code == 0 {
				t.Fatalf("nanokube %v succeeded, want an error", c.args)
			}
			msg := strings.TrimSpace(r.stderr)
			if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, c.want) {
				t.Errorf("nanokube %v: want one line containing %q, got %q", c.args, c.want, msg)
			}
		})
	}
	if _, err := os.Stat(l.Home + "/profiles/e2e-bad"); err == nil {
		t.Errorf("a rejected start left profile e2e-bad behind")
	}
}

// TestIntegrationHostDriver: the host driver (no namespaces, API on
// 127.0.0.1) runs a node and leaves nothing behind.
func TestIntegrationHostDriver(t *testing.T) {
	l := theLab
	const p = "e2e-host"
	l.startProfile(t, p, "--driver=host")
	if ip := strings.TrimSpace(l.nanokube(t, "ip", "-p", p).stdout); ip != "127.0.0.1" {
		t.Errorf("nanokube ip = %q, want 127.0.0.1", ip)
	}
	l.kubectl(t, p, "wait", "--for=condition=Ready", "node/"+p, "--timeout=60s")
}
