package controller

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestEventTTL(t *testing.T) {
	ev := func(name string, last time.Time) *corev1.Event {
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, CreationTimestamp: metav1.NewTime(time.Now().Add(-2 * time.Hour))},
			LastTimestamp: metav1.NewTime(last), Count: 3}
	}
	f := newFakeCluster(ev("old", time.Now().Add(-2*time.Hour)), ev("repeated", time.Now()))
	c, err := NewEventTTL(EventTTLConfig{Client: f.client, Informers: f.informers, Log: f.log, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	eventually(t, "the old event expired", func() bool {
		_, err := f.client.CoreV1().Events("default").Get(context.Background(), "old", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if _, err := f.client.CoreV1().Events("default").Get(context.Background(), "repeated", metav1.GetOptions{}); err != nil {
		t.Errorf("an event seen again just now expired: %v", err)
	}
}
