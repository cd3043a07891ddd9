package agent

import (
	"fmt"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

func TestRefreshAt(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name     string
		lifetime int64
		want     time.Duration // after issue
	}{
		{"an hour: at 80%", 3600, 48 * time.Minute},
		{"kube-api-access (3607s): at 80%", 3607, time.Duration(3607*8/10) * time.Second},
		{"two days: after one", 2 * 24 * 3600, 24 * time.Hour},
	}
	for _, tt := range tests {
		tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &tt.lifetime},
			Status: authenticationv1.TokenRequestStatus{ExpirationTimestamp: metav1.NewTime(now.Add(time.Duration(tt.lifetime) * time.Second))}}
		got := refreshAt(tr).Sub(now)
		if got > tt.want+time.Second || got < tt.want-tokenMaxJitter-time.Second {
			t.Errorf("%s: refresh after %v, want %v minus up to %v of jitter", tt.name, got, tt.want, tokenMaxJitter)
		}
	}
}

func TestTokenCacheRequestsBoundTokensAndReuses(t *testing.T) {
	cs := fake.NewClientset()
	var requests []*authenticationv1.TokenRequest
	cs.PrependReactor("create", "serviceaccounts", func(a clienttesting.Action) (bool, runtime.Object, error) {
		ca, ok := a.(clienttesting.CreateAction)
		if !ok || a.GetSubresource() != "token" {
			return false, nil, nil
		}
		tr := ca.GetObject().(*authenticationv1.TokenRequest).DeepCopy()
		requests = append(requests, tr)
		tr.Status.Token = fmt.Sprintf("token-%d", len(requests))
		tr.Status.ExpirationTimestamp = metav1.NewTime(time.Now().Add(time.Duration(*tr.Spec.ExpirationSeconds) * time.Second))
		return true, tr, nil
	})
	tc := newTokenCache(cs)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "uid-1"}, Spec: corev1.PodSpec{ServiceAccountName: "builder"}}
	exp := int64(3607)
	proj := &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &exp}

	tok, refresh, err := tc.get(t.Context(), pod, proj)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "token-1" || time.Until(refresh) < 47*time.Minute {
		t.Errorf("token %q refresh in %v", tok, time.Until(refresh))
	}
	if tok, _, _ := tc.get(t.Context(), pod, proj); tok != "token-1" || len(requests) != 1 {
		t.Errorf("second get: %q after %d requests, want the cached token", tok, len(requests))
	}
	r := requests[0]
	if ref := r.Spec.BoundObjectRef; ref == nil || ref.Kind != "Pod" || ref.Name != "web" || ref.UID != "uid-1" || len(r.Spec.Audiences) != 0 {
		t.Errorf("request = %+v", r.Spec)
	}

	aud := &corev1.ServiceAccountTokenProjection{Path: "vault", Audience: "vault", ExpirationSeconds: &exp}
	if tok, _, _ := tc.get(t.Context(), pod, aud); tok != "token-2" || requests[1].Spec.Audiences[0] != "vault" {
		t.Errorf("audience token %q, request %+v", tok, requests[1].Spec)
	}
	tc.forget("uid-1")
	if tok, _, _ := tc.get(t.Context(), pod, proj); tok != "token-3" {
		t.Errorf("after forget: %q, want a new token", tok)
	}
}
