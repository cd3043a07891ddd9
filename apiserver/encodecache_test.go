package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
)

// TestEncodeCacheBound checks entries are shared, and evicted by bytes.
func TestEncodeCacheBound(t *testing.T) {
	c := newEncodeCache(16 * 10)
	calls := 0
	enc := func() ([]byte, error) { calls++; return []byte("0123456789"), nil }
	for i := range 20 {
		if _, err := c.get(encodeKey{key: fmt.Sprint(i), rev: 1}, enc); err != nil {
			t.Fatal(err)
		}
	}
	if c.size > c.max || c.ll.Len() != 16 {
		t.Fatalf("size %d of %d, %d entries", c.size, c.max, c.ll.Len())
	}
	calls = 0
	c.get(encodeKey{key: "19", rev: 1}, enc)
	c.get(encodeKey{key: "0", rev: 1}, enc) // evicted
	c.get(encodeKey{key: "0", rev: 0}, enc) // revision 0: never cached
	if calls != 2 {
		t.Fatalf("encoded %d times, want 2", calls)
	}
}

// TestJSONListFromCache checks the JSON and protobuf LISTs written from
// cached item encodings are byte for byte what encoding the typed list
// gives, with and without selectors, limits and a warm cache.
func TestJSONListFromCache(t *testing.T) {
	s := startTestServer(t)
	cs, err := kubernetes.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Labels: map[string]string{"n": fmt.Sprint(i % 2)}}, Data: map[string]string{"k": "v"}}
		if _, err := cs.CoreV1().ConfigMaps("default").Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	res := s.resource(schema.GroupVersion{Version: "v1"}, "configmaps")
	for _, opts := range []metav1.ListOptions{{}, {LabelSelector: "n=1"}, {Limit: 2}, {FieldSelector: "metadata.name=cm-3"}, {LabelSelector: "n=none"}} {
		for round := range 2 { // cold, then warm cache
			stored, page, err := s.listStored(res, "default", &opts)
			if err != nil {
				t.Fatal(err)
			}
			fast := httptest.NewRecorder()
			if err := s.writeJSONList(fast, res, stored, page); err != nil {
				t.Fatal(err)
			}
			objs, _, _, err := s.listObjects(res, "default", &opts)
			if err != nil {
				t.Fatal(err)
			}
			list, err := s.typedList(res, objs, page)
			if err != nil {
				t.Fatal(err)
			}
			slow := httptest.NewRecorder()
			s.writeObject(slow, httptest.NewRequest("GET", "/api/v1/configmaps", nil), http.StatusOK, list, res.GroupVersion)
			if !bytes.Equal(fast.Body.Bytes(), slow.Body.Bytes()) {
				t.Fatalf("%+v round %d:\nfrom cache: %s\nencoded:    %s", opts, round, fast.Body, slow.Body)
			}
			fastPB := httptest.NewRecorder()
			if done, err := s.writeProtobufList(fastPB, res, stored, page); !done || err != nil {
				t.Fatal(done, err)
			}
			req := httptest.NewRequest("GET", "/api/v1/configmaps", nil)
			req.Header.Set("Accept", mediaProtobuf)
			slowPB := httptest.NewRecorder()
			s.writeObject(slowPB, req, http.StatusOK, list, res.GroupVersion)
			if !bytes.Equal(fastPB.Body.Bytes(), slowPB.Body.Bytes()) || slowPB.Header().Get("Content-Type") != mediaProtobuf {
				t.Fatalf("%+v round %d, protobuf:\nfrom cache: %q\nencoded:    %q", opts, round, fastPB.Body, slowPB.Body)
			}
		}
	}
	if hits, _ := s.items.stats(); hits == 0 {
		t.Error("no cache hits on the second LISTs")
	}
}

// TestWatchFanOutFromCache runs several JSON watchers (one with a label
// selector) and a protobuf one: each gets every event with the right type
// and revision, and the encodings are shared.
func TestWatchFanOutFromCache(t *testing.T) {
	s := startTestServer(t)
	cfg := s.LoopbackConfig()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cms := cs.CoreV1().ConfigMaps("default")
	first, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before", Labels: map[string]string{"app": "x"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: cfg.Dial}}
	type line struct {
		Type   string          `json:"type"`
		Object json.RawMessage `json:"object"`
	}
	open := func(query string) *bufio.Scanner {
		req, _ := http.NewRequestWithContext(ctx, "GET", cfg.Host+"/api/v1/namespaces/default/configmaps?watch=true&"+query, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("watch %s: %s: %s", query, resp.Status, b)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		return sc
	}
	next := func(sc *bufio.Scanner) (string, *corev1.ConfigMap) {
		t.Helper()
		if !sc.Scan() {
			t.Fatalf("watch ended: %v", sc.Err())
		}
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("event %q: %v", sc.Bytes(), err)
		}
		var cm corev1.ConfigMap
		if err := json.Unmarshal(l.Object, &cm); err != nil {
			t.Fatal(err)
		}
		if cm.Kind != "ConfigMap" && l.Type != "BOOKMARK" {
			t.Errorf("event object kind %q", cm.Kind)
		}
		return l.Type, &cm
	}
	var all []*bufio.Scanner
	for range 4 {
		all = append(all, open("resourceVersion="+first.ResourceVersion))
	}
	initial := open("sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan")
	selected := open("labelSelector=app%3Dx&resourceVersion=" + first.ResourceVersion)
	pw, err := cs.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion}) // protobuf
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Stop()

	if typ, cm := next(initial); typ != "ADDED" || cm.Name != "before" {
		t.Fatalf("initial event %s %s", typ, cm.Name)
	}
	if typ, cm := next(initial); typ != "BOOKMARK" || cm.Annotations[metav1.InitialEventsAnnotationKey] != "true" {
		t.Fatalf("after the initial events: %s %v", typ, cm.Annotations)
	}
	all = append(all, initial)

	created, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"app": "x"}}, Data: map[string]string{"k": "1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Labels = map[string]string{"app": "y"}
	updated, err := cms.Update(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, sc := range all {
		for _, want := range []struct{ typ, rv string }{{"ADDED", created.ResourceVersion}, {"MODIFIED", updated.ResourceVersion}, {"DELETED", ""}} {
			typ, cm := next(sc)
			if typ != want.typ || cm.Name != "a" || (want.rv != "" && cm.ResourceVersion != want.rv) {
				t.Errorf("watcher %d: %s %s rv %s, want %s rv %s", i, typ, cm.Name, cm.ResourceVersion, want.typ, want.rv)
			}
		}
	}
	// The selector sees the label change as the object leaving it.
	for _, want := range []string{"ADDED", "DELETED"} {
		if typ, cm := next(selected); typ != want || cm.Name != "a" {
			t.Errorf("selected watch: %s %s, want %s", typ, cm.Name, want)
		}
	}
	for _, want := range []string{"ADDED", "MODIFIED", "DELETED"} {
		select {
		case ev := <-pw.ResultChan():
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if string(ev.Type) != want || !ok || cm.Name != "a" {
				t.Errorf("protobuf watch: %s %T, want %s", ev.Type, ev.Object, want)
			}
		case <-ctx.Done():
			t.Fatal("protobuf watch: no event")
		}
	}
	// Five JSON watchers: each event encoded once, then four hits.
	if hits, total := s.events.stats(); hits < 3*4 {
		t.Errorf("encode cache: %d hits of %d lookups", hits, total)
	}
}
