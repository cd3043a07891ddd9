//go:build linux

package daemon

import (
	"time"

	"github.com/nanokube/nanokube/apiserver"
	"github.com/nanokube/nanokube/internal/satoken"
)

// verifyServiceAccountTokens lets the API server authenticate the
// ServiceAccount tokens it issued (bearer tokens, TokenReview).
func verifyServiceAccountTokens(v *satoken.Verifier) apiserver.VerifyTokenFunc {
	return func(token string, audiences []string, now time.Time) (*apiserver.ServiceAccountClaims, error) {
		c, err := v.Verify(token, audiences, now)
		if err != nil {
			return nil, err
		}
		out := &apiserver.ServiceAccountClaims{Namespace: c.Namespace, Name: c.ServiceAccount.Name, UID: c.ServiceAccount.UID, ID: c.ID, Audiences: c.Audiences}
		if c.Pod != nil {
			out.PodName, out.PodUID = c.Pod.Name, c.Pod.UID
		}
		if c.Secret != nil {
			out.SecretName, out.SecretUID = c.Secret.Name, c.Secret.UID
		}
		if c.Node != nil {
			out.NodeName, out.NodeUID = c.Node.Name, c.Node.UID
		}
		return out, nil
	}
}
