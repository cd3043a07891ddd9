package apiserver

import (
	"fmt"
	"strings"
	"testing"

	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TestDuplicateFields: a body with a key twice is a strict decoding error
// under fieldValidation=Strict and a warning under Warn, for every way a
// body reaches the server, with kube-apiserver's text.
func TestDuplicateFields(t *testing.T) {
	s := startTestServer(t)
	ctx := t.Context()
	send := func(level, method, path, contentType, body string) (error, []string) {
		var warnings []string
		cfg := rest.CopyConfig(s.LoopbackConfig())
		cfg.WarningHandler = warningCollector{&warnings}
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = c.CoreV1().RESTClient().Verb(method).AbsPath(path).Param("fieldValidation", level).Param("fieldManager", "test").
			SetHeader("Content-Type", contentType).Body([]byte(body)).Do(ctx).Error()
		return err, warnings
	}
	const cms = "/api/v1/namespaces/default/configmaps"
	if err, _ := send("Strict", "POST", cms, "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"base"}}`); err != nil {
		t.Fatal(err)
	}
	ext, err := apiextensionsclient.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, cronTabCRD(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEstablished(t, ext, "crontabs.stable.example.com")
	const cts = "/apis/stable.example.com/v1/namespaces/default/crontabs"
	if err, _ := send("Strict", "POST", cts, "application/json", `{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"base"}}`); err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		name, method, path, contentType, body string
		want                                  string // in the Strict error and the Warn warning
	}{
		{"create json", "POST", cms, "application/json",
			`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s"},"data":{"a":"b"},"data":{"c":"d"}}`, `duplicate field "data"`},
		{"create yaml", "POST", cms, "application/yaml",
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  a: b\ndata:\n  c: d\n", `key "data" already set in map`},
		{"update", "PUT", cms + "/base", "application/json",
			`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"base"},"data":{"a":"b","a":"c"}%.0s}`, `duplicate field "data.a"`},
		{"merge patch", "PATCH", cms + "/base", "application/merge-patch+json",
			`{"data":{"a":"b"},"data":{"c":"d"}%.0s}`, `duplicate field "data"`},
		{"strategic merge patch", "PATCH", cms + "/base", "application/strategic-merge-patch+json",
			`{"data":{"a":"b"},"data":{"c":"d"}%.0s}`, `duplicate field "data"`},
		{"apply patch", "PATCH", cms + "/applied", "application/apply-patch+yaml",
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: b\ndata:\n  c: d\n%.0s", `key "data" already set in map`},
		{"custom resource create json", "POST", cts, "application/json",
			`{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"%s"},"spec":{"image":"a","image":"b"}}`, `duplicate field "spec.image"`},
		{"custom resource create yaml", "POST", cts, "application/yaml",
			"apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: %s\nspec:\n  image: a\nspec:\n  image: b\n", `key "spec" already set in map`},
		{"custom resource merge patch", "PATCH", cts + "/base", "application/merge-patch+json",
			`{"spec":{"image":"a"},"spec":{"image":"b"}%.0s}`, `duplicate field "spec"`},
	} {
		body := func(level string) string {
			return fmt.Sprintf(c.body, fmt.Sprintf("cm%d-%s", i, strings.ToLower(level)))
		}
		prefix := "strict decoding error: "
		if c.contentType == "application/apply-patch+yaml" {
			prefix = "error strict decoding YAML: " // kube-apiserver's apply handler says so
		}
		err, _ := send("Strict", c.method, c.path, c.contentType, body("Strict"))
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), prefix) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s, Strict: %v, want 400 %s...%s", c.name, err, prefix, c.want)
		}
		err, warnings := send("Warn", c.method, c.path, c.contentType, body("Warn"))
		if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], c.want) {
			t.Errorf("%s, Warn: %v, warnings %q, want one with %s", c.name, err, warnings, c.want)
		}
		if err, warnings := send("Ignore", c.method, c.path, c.contentType, body("Ignore")); err != nil || len(warnings) != 0 {
			t.Errorf("%s, Ignore: %v, warnings %q", c.name, err, warnings)
		}
	}
}
