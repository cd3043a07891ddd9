package controller

import (
	"context"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clienttesting "k8s.io/client-go/testing"
)

func finishedJob(name string, ttl *int32, finished time.Time) *batchv1.Job {
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)}, Spec: batchv1.JobSpec{TTLSecondsAfterFinished: ttl},
		Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(finished)}}}}
}

func TestTTLAfterFinished(t *testing.T) {
	zero, one, hour := int32(0), int32(1), int32(3600)
	expired := finishedJob("expired", &zero, time.Now().Add(-time.Minute))
	soon := finishedJob("soon", &one, time.Now())
	later := finishedJob("later", &hour, time.Now())
	kept := finishedJob("kept", nil, time.Now().Add(-time.Hour))
	running := finishedJob("running", &zero, time.Now())
	running.Status.Conditions = nil
	f := newFakeCluster(expired, soon, later, kept, running)
	var policies []metav1.DeletionPropagation
	f.client.PrependReactor("delete", "jobs", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if o := a.(clienttesting.DeleteActionImpl).DeleteOptions; o.PropagationPolicy != nil {
			policies = append(policies, *o.PropagationPolicy)
		}
		return false, nil, nil
	})
	c, err := NewTTLAfterFinished(TTLAfterFinishedConfig{Client: f.client, Informers: f.informers, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	gone := func(name string) func() bool {
		return func() bool {
			_, err := f.client.BatchV1().Jobs("default").Get(context.Background(), name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}
	}
	eventually(t, "the expired job deleted", gone("expired"))
	eventually(t, "the job with 1s deleted", gone("soon"))
	for _, name := range []string{"later", "kept", "running"} {
		if gone(name)() {
			t.Errorf("job %s deleted", name)
		}
	}
	for _, p := range policies {
		if p != metav1.DeletePropagationForeground {
			t.Errorf("deleted with propagation %s, want Foreground", p)
		}
	}
}
