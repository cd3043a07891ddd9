//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const cronTabCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names: {plural: crontabs, singular: crontab, kind: CronTab, shortNames: [ct], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Spec, type: string, jsonPath: .spec.cronSpec}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        description: CronTab runs an image on a cron schedule.
        properties:
          spec:
            type: object
            description: What the CronTab runs and when.
            properties:
              cronSpec: {type: string, description: The cron schedule the image runs on.}
              image: {type: string}
              replicas: {type: integer, minimum: 0, maximum: 10, default: 1}
          status:
            type: object
            properties:
              replicas: {type: integer}
  - name: v1beta1
    served: true
    storage: false
    deprecated: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`

const cronTabCR = `apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: my-cron
spec:
  cronSpec: "* * * * */5"
  image: my-cron-image
`

// TestIntegrationCustomResources drives a CRD with the real kubectl: apply
// it, wait for Established, create custom resources and read them back
// with the printer columns, explain, patch the status subresource, scale,
// server-side apply, validation errors, and delete the CRD with its objects.
func TestIntegrationCustomResources(t *testing.T) {
	l := theLab
	const p = "e2e-crd"
	l.startProfile(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	dir := t.TempDir()
	file := func(name, body string) string {
		t.Helper()
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}

	if out := k("apply", "-f", file("crd.yaml", cronTabCRD)); !strings.Contains(out, "customresourcedefinition.apiextensions.k8s.io/crontabs.stable.example.com created") {
		t.Errorf("apply CRD: %q", out)
	}
	if out := k("wait", "--for", "condition=established", "--timeout=60s", "crd/crontabs.stable.example.com"); !strings.Contains(out, "condition met") {
		t.Errorf("wait established: %q", out)
	}
	if out := k("get", "crd", "crontabs.stable.example.com", "-o", "jsonpath={.status.conditions[?(@.type==\"NamesAccepted\")].status} {.status.acceptedNames.kind}"); out != "True CronTab" {
		t.Errorf("CRD status: %q", out)
	}
	if out := k("apply", "-f", file("cr.yaml", cronTabCR)); !strings.Contains(out, "crontab.stable.example.com/my-cron created") {
		t.Errorf("apply CR: %q", out)
	}
	if out := k("apply", "-f", file("cr.yaml", cronTabCR)); !strings.Contains(out, "crontab.stable.example.com/my-cron unchanged") {
		t.Errorf("second apply of the CR: %q", out)
	}

	// Printer columns, short name, category, default from the schema.
	table := k("get", "ct")
	head := strings.Fields(strings.SplitN(table, "\n", 2)[0])
	if strings.Join(head, " ") != "NAME SPEC REPLICAS AGE" || !strings.Contains(table, "my-cron") || !strings.Contains(table, "* * * * */5") {
		t.Errorf("get ct:\n%s", table)
	}
	if out := k("get", "crontab", "my-cron", "-o", "jsonpath={.spec.replicas}"); out != "1" {
		t.Errorf("defaulted replicas = %q", out)
	}
	if out := k("get", "all"); !strings.Contains(out, "crontab.stable.example.com/my-cron") {
		t.Errorf("get all lacks the custom resource:\n%s", out)
	}
	if out := k("api-resources", "--api-group=stable.example.com"); !strings.Contains(out, "crontabs") || !strings.Contains(out, "ct") || !strings.Contains(out, "stable.example.com/v1") || !strings.Contains(out, "CronTab") {
		t.Errorf("api-resources:\n%s", out)
	}

	// explain reads the schema from OpenAPI v3.
	if out := k("explain", "crontab.spec"); !strings.Contains(out, "What the CronTab runs and when.") || !strings.Contains(out, "cronSpec") || !strings.Contains(out, "The cron schedule the image runs on.") {
		t.Errorf("explain crontab.spec:\n%s", out)
	}

	// Status subresource, scale, patches.
	k("patch", "crontab", "my-cron", "--subresource=status", "--type=merge", "-p", `{"status":{"replicas":2}}`)
	k("scale", "crontab", "my-cron", "--replicas=3")
	k("patch", "crontab", "my-cron", "--type=merge", "-p", `{"spec":{"image":"merged"}}`)
	k("patch", "crontab", "my-cron", "--type=json", "-p", `[{"op":"replace","path":"/spec/cronSpec","value":"*/2 * * * *"}]`)
	if out := k("get", "crontab", "my-cron", "-o", "jsonpath={.status.replicas} {.spec.replicas} {.spec.image} {.spec.cronSpec}"); out != "2 3 merged */2 * * * *" {
		t.Errorf("after status patch, scale and patches: %q", out)
	}
	if r := l.kubectlResult(t, p, "patch", "crontab", "my-cron", "-p", `{"spec":{"image":"x"}}`); r.code == 0 || !strings.Contains(r.stderr, "the body of the request was in an unknown format") {
		t.Errorf("strategic merge patch of a custom resource: %s", r)
	}

	// Validation from the schema and strict field validation.
	bad := strings.Replace(cronTabCR, "my-cron\n", "bad\n", 1) + "  replicas: 20\n"
	if r := l.kubectlResult(t, p, "apply", "-f", file("bad.yaml", bad)); r.code == 0 || !strings.Contains(r.stderr, "spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10") {
		t.Errorf("invalid custom resource: %s", r)
	}
	unknown := strings.Replace(cronTabCR, "my-cron\n", "unknown\n", 1) + "  colour: red\n"
	if r := l.kubectlResult(t, p, "apply", "-f", file("unknown.yaml", unknown)); r.code == 0 || !strings.Contains(r.stderr, `unknown field "spec.colour"`) {
		t.Errorf("unknown field in a custom resource: %s", r)
	}

	// Server-side apply; the deprecated version serves the same object.
	ssa := strings.Replace(cronTabCR, "my-cron\n", "applied\n", 1)
	k("apply", "--server-side", "--field-manager=alice", "-f", file("ssa.yaml", ssa))
	if out := k("get", "crontab", "applied", "-o", "jsonpath={.metadata.managedFields[0].manager}"); out != "alice" {
		t.Errorf("managedFields manager = %q", out)
	}
	r := l.kubectlResult(t, p, "get", "crontabs.v1beta1.stable.example.com", "applied", "-o", "jsonpath={.apiVersion}")
	if r.code != 0 || r.stdout != "stable.example.com/v1beta1" || !strings.Contains(r.stderr, "stable.example.com/v1beta1 CronTab is deprecated") {
		t.Errorf("get through v1beta1: %s", r)
	}

	// Deleting the CRD deletes its custom resources.
	if out := k("delete", "-f", filepath.Join(dir, "crd.yaml")); !strings.Contains(out, `customresourcedefinition.apiextensions.k8s.io "crontabs.stable.example.com" deleted`) {
		t.Errorf("delete CRD: %q", out)
	}
	if r := l.kubectlResult(t, p, "get", "crontabs.stable.example.com"); r.code == 0 || !strings.Contains(r.stderr, `the server doesn't have a resource type "crontabs"`) {
		t.Errorf("get after the CRD was deleted: %s", r)
	}
	k("apply", "-f", filepath.Join(dir, "crd.yaml"))
	k("wait", "--for", "condition=established", "--timeout=60s", "crd/crontabs.stable.example.com")
	if out := k("get", "crontabs", "-A", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("custom resources survived their CRD's deletion: %q", out)
	}
}
