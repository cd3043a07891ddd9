//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanokube/nanokube/network"
)

// TestIntegrationDashboard: `nanokube dashboard --url` serves the web
// dashboard on loopback; its page loads, it lists pods as kube-apiserver's
// Table, follows them with a Table watch, scales a Deployment and reads
// logs for the page, refuses what a browser elsewhere must not do, and
// stops on Ctrl-C.
func TestIntegrationDashboard(t *testing.T) {
	l := theLab
	const p = "e2e-dash"
	l.startProfile(t, p)
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	k("create", "deployment", "web", "--image="+busyboxRef, "--", "sh", "-c", "echo hello-from-web; sleep 3600")
	k("rollout", "status", "deployment/web", "--timeout=120s")

	if r := l.nanokubeResult(t, "dashboard", "-p", "nope", "--url"); r.code == 0 || !strings.Contains(r.stderr, `profile "nope" does not exist`) {
		t.Errorf("dashboard of a missing profile: %s", r)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := l.Command(ctx, l.binary, "dashboard", "-p", p, "--url")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatalf("dashboard printed no URL; stderr:\n%s", stderr.String())
	}
	url := strings.TrimSpace(lines.Text())
	go func() { io.Copy(io.Discard, stdout); exited <- cmd.Wait() }()
	t.Cleanup(func() { cancel(); <-exited })
	m := regexp.MustCompile(`^http://127\.0\.0\.1:(\d+)/$`).FindStringSubmatch(url)
	if m == nil {
		t.Fatalf("dashboard --url printed %q, want http://127.0.0.1:PORT/", url)
	}
	addr := "127.0.0.1:" + m[1]

	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, a string) (net.Conn, error) {
			return network.DialContext(ctx, l.Netns, "tcp", addr)
		},
	}}
	do := func(method, path, host string, hdr map[string]string, body string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"

	if code, body := do("GET", "/", "", nil, ""); code != 200 || !strings.Contains(body, "<title>nanokube dashboard</title>") || !strings.Contains(body, "app.js") {
		t.Errorf("GET /: %d\n%s", code, body)
	}
	if code, body := do("GET", "/app.js", "", nil, ""); code != 200 || !strings.Contains(body, "as=Table") {
		t.Errorf("GET /app.js: %d", code)
	}

	// The pods list is kube-apiserver's Table: kubectl's columns, the
	// Deployment's pod in its rows.
	code, body := do("GET", "/api/v1/namespaces/default/pods", "", map[string]string{"Accept": table}, "")
	var tbl struct {
		Kind              string
		ColumnDefinitions []struct{ Name string }
		Rows              []struct {
			Cells  []any
			Object struct{ Metadata struct{ Name string } }
		}
		Metadata struct{ ResourceVersion string }
	}
	if err := json.Unmarshal([]byte(body), &tbl); err != nil || code != 200 || tbl.Kind != "Table" {
		t.Fatalf("pods as a Table through the dashboard: %d %v\n%s", code, err, body)
	}
	var cols []string
	for _, c := range tbl.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if got := strings.Join(cols, " "); !strings.HasPrefix(got, "Name Ready Status Restarts Age IP Node") {
		t.Errorf("pod columns %q", got)
	}
	if len(tbl.Rows) != 1 || !strings.HasPrefix(tbl.Rows[0].Object.Metadata.Name, "web-") || tbl.Rows[0].Cells[2] != "Running" {
		t.Fatalf("pod rows: %+v", tbl.Rows)
	}
	pod := tbl.Rows[0].Object.Metadata.Name

	// The page follows the list with a Table watch; scaling through the
	// dashboard shows up in it as new rows.
	wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer wcancel()
	req, _ := http.NewRequestWithContext(wctx, "GET", "http://"+addr+"/api/v1/namespaces/default/pods?watch=1&resourceVersion="+tbl.Metadata.ResourceVersion, nil)
	req.Header.Set("Accept", table)
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("Table watch through the dashboard: %v %v", err, resp)
	}
	defer resp.Body.Close()
	if code, body := do("PATCH", "/apis/apps/v1/namespaces/default/deployments/web/scale", "",
		map[string]string{"Content-Type": "application/merge-patch+json"}, `{"spec":{"replicas":2}}`); code != http.StatusForbidden {
		t.Errorf("scale without the dashboard header: %d %s", code, body)
	}
	if code, body := do("PATCH", "/apis/apps/v1/namespaces/default/deployments/web/scale", "",
		map[string]string{"Content-Type": "application/merge-patch+json", "X-Nanokube-Dashboard": "1"}, `{"spec":{"replicas":2}}`); code != 200 {
		t.Fatalf("scale through the dashboard: %d %s", code, body)
	}
	events := bufio.NewScanner(resp.Body)
	events.Buffer(nil, 1<<20)
	added := map[string]bool{}
	for len(added) == 0 && events.Scan() {
		var ev struct {
			Type   string
			Object struct {
				Kind string
				Rows []struct {
					Object struct{ Metadata struct{ Name string } }
				}
			}
		}
		if err := json.Unmarshal(events.Bytes(), &ev); err != nil {
			t.Fatalf("watch event: %v: %s", err, events.Text())
		}
		if ev.Object.Kind != "Table" {
			t.Fatalf("watch event object is a %q, want Table: %s", ev.Object.Kind, events.Text())
		}
		for _, r := range ev.Object.Rows {
			if ev.Type == "ADDED" && r.Object.Metadata.Name != pod {
				added[r.Object.Metadata.Name] = true
			}
		}
	}
	if len(added) == 0 {
		t.Errorf("the watch showed no new pod after scaling to 2 (%v)", events.Err())
	}
	if got := k("get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"); got != "2" {
		t.Errorf("replicas after scaling through the dashboard: %q", got)
	}

	if code, body := do("GET", "/api/v1/namespaces/default/pods/"+pod+"/log?tailLines=10", "", nil, ""); code != 200 || !strings.Contains(body, "hello-from-web") {
		t.Errorf("pod logs through the dashboard: %d %q", code, body)
	}

	// What a page elsewhere could try is refused before it reaches the
	// cluster.
	if code, _ := do("GET", "/api/v1/secrets", "attacker.example:"+m[1], nil, ""); code != http.StatusForbidden {
		t.Errorf("rebound Host: %d, want 403", code)
	}
	if code, _ := do("DELETE", "/apis/apps/v1/namespaces/default/deployments/web", "", nil, ""); code != http.StatusForbidden {
		t.Errorf("DELETE without the dashboard header: %d, want 403", code)
	}
	if code, _ := do("GET", "/api/v1/namespaces/default/pods/"+pod+"/exec?command=sh", "", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket"}, ""); code != http.StatusBadRequest {
		t.Errorf("exec upgrade: %d, want 400", code)
	}
	if got := strings.TrimSpace(k("get", "deployment", "web", "-o", "name")); got != "deployment.apps/web" {
		t.Errorf("the deployment after refused requests: %q", got)
	}

	// Ctrl-C ends it cleanly, open watch or not.
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("dashboard after Ctrl-C: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("dashboard still running 30 s after Ctrl-C")
	}
}
