//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIntegrationJobs: a Job with parallelism completes all its
// completions, a failing Job stops at its backoffLimit, `kubectl create
// job` and `kubectl logs job/…` work as in the seeds.
func TestIntegrationJobs(t *testing.T) {
	l := theLab
	const p = "e2e-jobs"
	l.startProfile(t, p)
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	k("create", "job", "hello", "--image="+busyboxRef, "--", "sh", "-c", "echo job ran")
	k("wait", "--for=condition=complete", "job/hello", "--timeout=60s")
	if out := k("logs", "job/hello"); out != "job ran\n" {
		t.Errorf("logs job/hello = %q", out)
	}
	manifest := filepath.Join(t.TempDir(), "jobs.yaml")
	os.WriteFile(manifest, []byte(`apiVersion: batch/v1
kind: Job
metadata: {name: par}
spec:
  completions: 4
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: w, image: `+busyboxRef+`, command: ["sh", "-c", "sleep 1"]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: bad}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: w, image: `+busyboxRef+`, command: ["sh", "-c", "exit 3"]}
`), 0o644)
	k("apply", "-f", manifest)
	k("wait", "--for=condition=complete", "job/par", "--timeout=90s")
	k("wait", "--for=condition=failed", "job/bad", "--timeout=90s")
	table := k("get", "jobs")
	for _, want := range []string{"par     Complete   4/4", "bad     Failed     0/1", "hello   Complete   1/1"} {
		if !strings.Contains(table, want) {
			t.Errorf("kubectl get jobs lacks %q:\n%s", want, table)
		}
	}
	if n := len(strings.Fields(k("get", "pods", "-l", "job-name=bad", "-o", "name"))); n != 3 {
		t.Errorf("failing job made %d pods, want backoffLimit+1 = 3", n)
	}
	if reason := k("get", "job", "bad", "-o", `jsonpath={.status.conditions[?(@.type=="Failed")].reason}`); reason != "BackoffLimitExceeded" {
		t.Errorf("failed reason = %q", reason)
	}
}

// TestIntegrationCronJob: a CronJob that fires every minute creates a Job
// that completes; `kubectl create job --from=cronjob/…` runs one at once.
func TestIntegrationCronJob(t *testing.T) {
	l := theLab
	const p = "e2e-cron"
	l.startProfile(t, p)
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	k("create", "cronjob", "tick", "--image="+busyboxRef, "--schedule=* * * * *", "--", "sh", "-c", "echo tick")
	k("create", "job", "manual", "--from=cronjob/tick")
	k("wait", "--for=condition=complete", "job/manual", "--timeout=60s")
	if out := k("logs", "job/manual"); out != "tick\n" {
		t.Errorf("manual job printed %q", out)
	}
	// The scheduled run comes within the next minute.
	k("wait", "--for=jsonpath={.status.lastScheduleTime}", "cronjob/tick", "--timeout=90s")
	jobs := strings.Fields(k("get", "jobs", "-o", "name"))
	if len(jobs) < 2 {
		t.Fatalf("jobs after the schedule fired: %v", jobs)
	}
	for _, j := range jobs {
		k("wait", "--for=condition=complete", j, "--timeout=60s")
	}
}
