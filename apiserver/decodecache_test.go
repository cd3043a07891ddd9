package apiserver

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

func podsResource(t *testing.T) *registry.Resource {
	t.Helper()
	for _, r := range registry.Resources() {
		if r.GroupVersion.Group == "" && r.Plural == "pods" {
			return r
		}
	}
	t.Fatal("no pods resource")
	return nil
}

func storedPod(t *testing.T, name, node string, rev int64) store.KV {
	t.Helper()
	b, err := json.Marshal(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.PodSpec{NodeName: node}})
	if err != nil {
		t.Fatal(err)
	}
	return store.KV{Key: "/pods/default/" + name, Value: b, ModRev: rev}
}

// TestDecodeCache checks a cached decode is the object decodeStored
// gives, that callers may change what they get, and that the cache keeps
// at most its bound.
func TestDecodeCache(t *testing.T) {
	res := podsResource(t)
	c := newDecodeCache(2)
	kv := storedPod(t, "a", "n1", 5)
	first, err := c.decode(res, kv)
	if err != nil {
		t.Fatal(err)
	}
	first.(*corev1.Pod).Spec.NodeName = "changed by a caller"
	again, err := c.decode(res, kv)
	if err != nil {
		t.Fatal(err)
	}
	p := again.(*corev1.Pod)
	if p.Spec.NodeName != "n1" || p.ResourceVersion != "5" || p.Kind != "Pod" || p.APIVersion != "v1" {
		t.Fatalf("cached decode: node %q rv %q %s/%s, want n1, 5, v1/Pod", p.Spec.NodeName, p.ResourceVersion, p.APIVersion, p.Kind)
	}
	// A new revision of the key is decoded from its own value.
	next, err := c.decode(res, storedPod(t, "a", "n2", 6))
	if err != nil {
		t.Fatal(err)
	}
	if n := next.(*corev1.Pod); n.Spec.NodeName != "n2" || n.ResourceVersion != "6" {
		t.Fatalf("next revision: node %q rv %q, want n2, 6", n.Spec.NodeName, n.ResourceVersion)
	}
	if _, err := c.decode(res, storedPod(t, "b", "n1", 7)); err != nil {
		t.Fatal(err)
	}
	if c.ll.Len() != 2 || len(c.m) != 2 {
		t.Fatalf("cache holds %d/%d entries, want its bound 2", c.ll.Len(), len(c.m))
	}
	if _, ok := c.m[decodeKey{res: res, key: kv.Key, rev: 5}]; ok {
		t.Fatal("least recently used entry kept")
	}
	// Undecodable values fail like decodeStored and are not kept.
	if _, err := c.decode(res, store.KV{Key: "/pods/default/bad", Value: []byte("{"), ModRev: 8}); err == nil {
		t.Fatal("bad value decoded")
	}
}

// BenchmarkDecodeCache compares decoding a stored pod with a cache hit
// (a deep copy).
func BenchmarkDecodeCache(b *testing.B) {
	var res *registry.Resource
	for _, r := range registry.Resources() {
		if r.GroupVersion.Group == "" && r.Plural == "pods" {
			res = r
		}
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-7d4b9c-x2x9z", Namespace: "default", Labels: map[string]string{"app": "web", "pod-template-hash": "7d4b9c"}},
		Spec:   corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0.5", Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	v, err := json.Marshal(p)
	if err != nil {
		b.Fatal(err)
	}
	kv := store.KV{Key: "/pods/default/web", Value: v, ModRev: 9}
	b.Run("decode", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := decodeStored(res, kv); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		c := newDecodeCache(decodeCacheSize)
		for i := 0; i < b.N; i++ {
			if _, err := c.decode(res, kv); err != nil {
				b.Fatal(err)
			}
		}
	})
}
