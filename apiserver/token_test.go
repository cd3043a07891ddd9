package apiserver

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/internal/satoken"
	"github.com/nanokube/nanokube/store"
)

func newTokenServer(t *testing.T) (kubernetes.Interface, *satoken.Verifier) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := satoken.NewSigner(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "store.db"), Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Store: st, Resources: registry.Resources(), TokenSigner: signer})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("server ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server not ready in 10s")
	}
	cs, err := kubernetes.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cs, signer.Verifier()
}

func TestTokenRequest(t *testing.T) {
	cs, verifier := newTokenServer(t)
	ctx := t.Context()
	sa, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{ServiceAccountName: "builder", NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Unbound, default audience and lifetime (kubectl create token).
	tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, "builder", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Name != "builder" || tr.Namespace != "default" || len(tr.Spec.Audiences) != 1 || tr.Spec.Audiences[0] != satoken.Issuer ||
		tr.Spec.ExpirationSeconds == nil || *tr.Spec.ExpirationSeconds != 3600 {
		t.Errorf("token request = %+v", tr)
	}
	c, err := verifier.Verify(tr.Status.Token, []string{satoken.Issuer}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "system:serviceaccount:default:builder" || c.ServiceAccount.UID != string(sa.UID) || c.Pod != nil ||
		c.Expiry.Sub(c.IssuedAt) != time.Hour || !c.WarnAfter.IsZero() || c.ID == "" {
		t.Errorf("claims = %+v", c)
	}
	if d := tr.Status.ExpirationTimestamp.Sub(c.Expiry); d > time.Second || d < -time.Second {
		t.Errorf("status expiration %v vs exp %v", tr.Status.ExpirationTimestamp, c.Expiry)
	}

	// Pod-bound, as the kube-api-access volume asks: extended to a year
	// with warnafter, naming the pod and its node.
	exp := int64(3607)
	tr, err = cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, "builder", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &exp, BoundObjectRef: &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: "p", UID: pod.UID}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err = verifier.Verify(tr.Status.Token, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c.Pod == nil || c.Pod.UID != string(pod.UID) || c.Node == nil || c.Node.UID != string(node.UID) ||
		c.Expiry.Sub(c.IssuedAt) != 365*24*time.Hour || c.WarnAfter.Sub(c.IssuedAt) != 3607*time.Second {
		t.Errorf("pod-bound claims = %+v (pod %+v node %+v)", c, c.Pod, c.Node)
	}
	if d := time.Until(tr.Status.ExpirationTimestamp.Time); d > 3607*time.Second || d < 3500*time.Second {
		t.Errorf("status expiration in %v, want the requested 3607s", d)
	}

	// Errors like kube-apiserver's.
	short := int64(60)
	_, err = cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, "builder", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &short}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes") {
		t.Errorf("short token = %v", err)
	}
	_, err = cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, "nobody", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("token of a missing account = %v", err)
	}
	_, err = cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, "builder", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: "p", UID: "not-the-uid"}}}, metav1.CreateOptions{})
	if !apierrors.IsConflict(err) {
		t.Errorf("stale pod UID = %v", err)
	}
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, "other", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: "p"}}}, metav1.CreateOptions{})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "different serviceaccount name") {
		t.Errorf("pod of another account = %v", err)
	}
}

func TestServiceAccountAdmission(t *testing.T) {
	cs, _ := newTokenServer(t)
	ctx := t.Context()
	pods := cs.CoreV1().Pods("default")
	// No ServiceAccount controller runs here: the account must exist.
	_, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "early"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `error looking up service account default/default: serviceaccount "default" not found`) {
		t.Errorf("pod without its account = %v", err)
	}
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	no := false
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "quiet"}, AutomountServiceAccountToken: &no}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	pod, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
		Containers: []corev1.Container{{Name: "app", Image: "busybox"},
			{Name: "own", Image: "busybox", VolumeMounts: []corev1.VolumeMount{{Name: "mine", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}}}},
		Volumes: []corev1.Volume{{Name: "mine", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Spec.ServiceAccountName != "default" || len(pod.Spec.ImagePullSecrets) != 1 || pod.Spec.ImagePullSecrets[0].Name != "regcred" {
		t.Errorf("account %q, pull secrets %v", pod.Spec.ServiceAccountName, pod.Spec.ImagePullSecrets)
	}
	if len(pod.Spec.Volumes) != 2 {
		t.Fatalf("volumes = %+v", pod.Spec.Volumes)
	}
	v := pod.Spec.Volumes[1]
	if !strings.HasPrefix(v.Name, "kube-api-access-") || len(v.Name) != len("kube-api-access-")+5 || v.Projected == nil || len(v.Projected.Sources) != 3 ||
		*v.Projected.DefaultMode != 0o644 || v.Projected.Sources[0].ServiceAccountToken.Path != "token" || *v.Projected.Sources[0].ServiceAccountToken.ExpirationSeconds != 3607 ||
		v.Projected.Sources[1].ConfigMap.Name != "kube-root-ca.crt" || v.Projected.Sources[2].DownwardAPI.Items[0].FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("token volume = %+v", v)
	}
	want := corev1.VolumeMount{Name: v.Name, ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}
	if m := pod.Spec.InitContainers[0].VolumeMounts; len(m) != 1 || !reflect.DeepEqual(m[0], want) {
		t.Errorf("init container mounts %+v", m)
	}
	if m := pod.Spec.Containers[0].VolumeMounts; len(m) != 1 || !reflect.DeepEqual(m[0], want) {
		t.Errorf("app container mounts %+v", m)
	}
	if m := pod.Spec.Containers[1].VolumeMounts; len(m) != 1 || m[0].Name != "mine" {
		t.Errorf("a container with its own mount at the token path got %+v", m)
	}

	for _, tc := range []struct {
		name string
		spec corev1.PodSpec
	}{
		{"pod-opt-out", corev1.PodSpec{AutomountServiceAccountToken: &no, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}},
		{"account-opt-out", corev1.PodSpec{ServiceAccountName: "quiet", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}},
	} {
		p, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: tc.name}, Spec: tc.spec}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Spec.Volumes) != 0 || len(p.Spec.Containers[0].VolumeMounts) != 0 {
			t.Errorf("%s: automountServiceAccountToken false still mounted %+v", tc.name, p.Spec.Volumes)
		}
	}
}
