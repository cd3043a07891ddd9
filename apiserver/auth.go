package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// User is an authenticated identity.
type User struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

const (
	groupMasters         = "system:masters"
	groupAuthenticated   = "system:authenticated"
	groupUnauthenticated = "system:unauthenticated"
	userAnonymous        = "system:anonymous"
	saUserPrefix         = "system:serviceaccount:"
)

var loopbackUser = &User{Name: "system:apiserver", Groups: []string{groupMasters, groupAuthenticated}}

var anonymousUser = &User{Name: userAnonymous, Groups: []string{groupUnauthenticated}}

type userKey struct{}

func withUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

func userFrom(ctx context.Context) *User {
	u, _ := ctx.Value(userKey{}).(*User)
	return u
}

// ServiceAccountClaims is what a verified ServiceAccount token says.
type ServiceAccountClaims struct {
	Namespace, Name, UID  string // the ServiceAccount
	PodName, PodUID       string // bound to a pod (optional)
	SecretName, SecretUID string
	NodeName, NodeUID     string
	ID                    string // jti
	Audiences             []string
}

// VerifyTokenFunc checks a bearer token's signature, issuer and validity
// window (and, when audiences is set, that it is meant for one of them)
// and returns its claims. Any error rejects the token.
type VerifyTokenFunc func(token string, audiences []string, now time.Time) (*ServiceAccountClaims, error)

// authenticate finds the caller: the in-process listener's identity, a
// client certificate verified against the cluster CA (CN = user, O =
// groups) or a ServiceAccount bearer token. Health and version endpoints
// are open to anonymous callers like kube-apiserver's
// (system:public-info-viewer); everything else needs an identity.
// Impersonation headers then switch the identity when RBAC allows it.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if userFrom(r.Context()) == nil && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
			cert := r.TLS.VerifiedChains[0][0]
			u := &User{Name: cert.Subject.CommonName, Groups: append(append([]string{}, cert.Subject.Organization...), groupAuthenticated)}
			r = r.WithContext(withUser(r.Context(), u))
		}
		// A client certificate wins over a token, as in kube-apiserver's
		// authenticator order.
		if tok, ok := bearerToken(r); ok && userFrom(r.Context()) == nil {
			u, err := s.authenticateToken(tok, nil)
			if err != nil {
				s.log.Debug("bearer token rejected", "err", err)
				s.writeError(w, r, apierrors.NewUnauthorized("Unauthorized"))
				return
			}
			r = r.WithContext(withUser(r.Context(), u))
		}
		if userFrom(r.Context()) == nil {
			if !publicPath(r.URL.Path) {
				s.writeError(w, r, apierrors.NewUnauthorized("Unauthorized"))
				return
			}
			r = r.WithContext(withUser(r.Context(), anonymousUser))
		}
		r, err := s.impersonate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// authenticateToken verifies a ServiceAccount token and checks, like
// kube-apiserver, that the ServiceAccount and the object the token is
// bound to still exist with the UIDs it names.
func (s *Server) authenticateToken(tok string, audiences []string) (*User, error) {
	if s.cfg.VerifyServiceAccountToken == nil {
		return nil, fmt.Errorf("service account tokens are not accepted")
	}
	if len(audiences) == 0 {
		audiences = s.cfg.TokenAudiences
	}
	c, err := s.cfg.VerifyServiceAccountToken(tok, audiences, time.Now())
	if err != nil {
		return nil, err
	}
	saRes := s.resource(schemaCoreV1, "serviceaccounts")
	obj, _, err := s.getObject(saRes, c.Namespace, c.Name)
	if err != nil {
		return nil, fmt.Errorf("service account %s/%s: %w", c.Namespace, c.Name, err)
	}
	sa := obj.(*corev1.ServiceAccount)
	if c.UID != "" && string(sa.UID) != c.UID {
		return nil, fmt.Errorf("service account UID (%s) does not match claim (%s)", sa.UID, c.UID)
	}
	u := &User{Name: saUserPrefix + c.Namespace + ":" + c.Name, UID: string(sa.UID),
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + c.Namespace, groupAuthenticated}, Extra: map[string][]string{}}
	if c.PodName != "" {
		pobj, _, err := s.getObject(s.resource(schemaCoreV1, "pods"), c.Namespace, c.PodName)
		if err != nil {
			return nil, fmt.Errorf("pod %s/%s of the token: %w", c.Namespace, c.PodName, err)
		}
		if pod := pobj.(*corev1.Pod); c.PodUID != "" && string(pod.UID) != c.PodUID {
			return nil, fmt.Errorf("pod UID (%s) does not match claim (%s)", pod.UID, c.PodUID)
		}
		u.Extra["authentication.kubernetes.io/pod-name"] = []string{c.PodName}
		u.Extra["authentication.kubernetes.io/pod-uid"] = []string{c.PodUID}
	}
	if c.SecretName != "" {
		sobj, _, err := s.getObject(s.resource(schemaCoreV1, "secrets"), c.Namespace, c.SecretName)
		if err != nil {
			return nil, fmt.Errorf("secret %s/%s of the token: %w", c.Namespace, c.SecretName, err)
		}
		if sec := sobj.(*corev1.Secret); c.SecretUID != "" && string(sec.UID) != c.SecretUID {
			return nil, fmt.Errorf("secret UID (%s) does not match claim (%s)", sec.UID, c.SecretUID)
		}
	}
	if c.NodeName != "" {
		u.Extra["authentication.kubernetes.io/node-name"] = []string{c.NodeName}
		u.Extra["authentication.kubernetes.io/node-uid"] = []string{c.NodeUID}
	}
	if c.ID != "" {
		u.Extra["authentication.kubernetes.io/credential-id"] = []string{"JTI=" + c.ID}
	}
	return u, nil
}

func publicPath(p string) bool {
	switch p {
	case "/healthz", "/livez", "/readyz", "/version", "/version/":
		return true
	}
	return false
}

func isMaster(u *User) bool { return slices.Contains(u.Groups, groupMasters) }
