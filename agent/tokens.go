package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Token refresh, kubelet's token manager: a token is renewed once 80% of
// its requested lifetime has passed (or it is a day old), with up to 10s
// of jitter so pods do not renew in step.
const (
	tokenMaxTTL    = 24 * time.Hour
	tokenMaxJitter = 10 * time.Second
)

// tokenCache holds the ServiceAccount tokens of this node's pods, got
// through the TokenRequest API (serviceaccounts/token).
type tokenCache struct {
	client kubernetes.Interface
	mu     sync.Mutex
	tokens map[string]cachedToken // key: pod uid, audience, lifetime
}

type cachedToken struct {
	tr      *authenticationv1.TokenRequest
	refresh time.Time
}

func newTokenCache(client kubernetes.Interface) *tokenCache {
	return &tokenCache{client: client, tokens: map[string]cachedToken{}}
}

// get returns a token for the pod's ServiceAccount bound to the pod, and
// when it should be refreshed.
func (t *tokenCache) get(ctx context.Context, pod *corev1.Pod, p *corev1.ServiceAccountTokenProjection) (string, time.Time, error) {
	exp := int64(3600)
	if p.ExpirationSeconds != nil {
		exp = *p.ExpirationSeconds
	}
	var auds []string
	if p.Audience != "" {
		auds = []string{p.Audience}
	}
	key := fmt.Sprintf("%s/%s/%d", pod.UID, p.Audience, exp)
	now := time.Now()
	t.mu.Lock()
	cached, ok := t.tokens[key]
	t.mu.Unlock()
	if ok && now.Before(cached.refresh) {
		return cached.tr.Status.Token, cached.refresh, nil
	}
	tr, err := t.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, pod.Spec.ServiceAccountName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:         auds,
			ExpirationSeconds: &exp,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		if ok && now.Before(cached.tr.Status.ExpirationTimestamp.Time) {
			return cached.tr.Status.Token, now.Add(tokenMaxJitter), nil // keep the valid one, retry soon
		}
		return "", time.Time{}, fmt.Errorf("failed to fetch token: %w", err)
	}
	at := refreshAt(tr)
	t.mu.Lock()
	t.tokens[key] = cachedToken{tr: tr, refresh: at}
	t.mu.Unlock()
	return tr.Status.Token, at, nil
}

// refreshAt is when kubelet's requiresRefresh turns true: 20% of the
// requested lifetime before expiry, or a day after issue.
func refreshAt(tr *authenticationv1.TokenRequest) time.Time {
	exp := tr.Status.ExpirationTimestamp.Time
	secs := int64(3600)
	if tr.Spec.ExpirationSeconds != nil {
		secs = *tr.Spec.ExpirationSeconds
	}
	lifetime := time.Duration(secs) * time.Second
	jitter := time.Duration(rand.Int64N(int64(tokenMaxJitter)))
	at := exp.Add(-lifetime/5 - jitter)
	if day := exp.Add(-lifetime).Add(tokenMaxTTL - jitter); day.Before(at) {
		at = day
	}
	return at
}

// forget drops a pod's tokens.
func (t *tokenCache) forget(uid string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.tokens {
		if strings.HasPrefix(k, uid+"/") {
			delete(t.tokens, k)
		}
	}
}
