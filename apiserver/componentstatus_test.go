package apiserver

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

func TestComponentStatuses(t *testing.T) {
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "store.db"), Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Store: st, Resources: registry.Resources(), Components: []ComponentCheck{
		{Name: "scheduler", Check: func(context.Context) error { return nil }},
		{Name: "controller-manager", Check: func(context.Context) error { return errors.New("not running") }},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	select {
	case <-s.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("server not ready")
	}
	cs, err := kubernetes.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	list, err := cs.CoreV1().ComponentStatuses().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range list.Items {
		got = append(got, c.Name+"="+string(c.Conditions[0].Status))
	}
	if want := "controller-manager=False etcd-0=True scheduler=True"; strings.Join(got, " ") != want {
		t.Errorf("componentstatuses = %q, want %q", strings.Join(got, " "), want)
	}
	one, err := cs.CoreV1().ComponentStatuses().Get(ctx, "controller-manager", metav1.GetOptions{})
	if err != nil || one.Conditions[0].Type != corev1.ComponentHealthy || one.Conditions[0].Error != "not running" {
		t.Errorf("get controller-manager = %+v, %v", one, err)
	}
	if _, err := cs.CoreV1().ComponentStatuses().Get(ctx, "nope", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get of an unknown component = %v, want NotFound", err)
	}
	// Field selectors: kube-apiserver's per-kind fields, 400 for others.
	if _, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Running,spec.nodeName=n1"}); err != nil {
		t.Errorf("pods by phase and node: %v", err)
	}
	_, err = cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{FieldSelector: "spec.image=x"})
	if !apierrors.IsBadRequest(err) || err.Error() != "field label not supported: spec.image" {
		t.Errorf("unsupported pod field = %v, want 400 field label not supported", err)
	}
	if _, err := cs.CoreV1().ConfigMaps("").Watch(ctx, metav1.ListOptions{FieldSelector: "data.x=y"}); !apierrors.IsBadRequest(err) {
		t.Errorf("watch with an unsupported field = %v, want 400", err)
	}
}
