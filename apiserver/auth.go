package apiserver

import (
	"context"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// User is an authenticated identity.
type User struct {
	Name   string
	Groups []string
}

var loopbackUser = &User{Name: "system:apiserver", Groups: []string{"system:masters", "system:authenticated"}}

type userKey struct{}

func withUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

func userFrom(ctx context.Context) *User {
	u, _ := ctx.Value(userKey{}).(*User)
	return u
}

// authenticate finds the caller: the in-process listener's identity, or a
// client certificate verified against the cluster CA (CN = user, O =
// groups). Health and version endpoints are open like kube-apiserver's
// (system:public-info-viewer); everything else needs an identity.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if userFrom(r.Context()) == nil && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
			cert := r.TLS.VerifiedChains[0][0]
			u := &User{Name: cert.Subject.CommonName, Groups: append(append([]string{}, cert.Subject.Organization...), "system:authenticated")}
			r = r.WithContext(withUser(r.Context(), u))
		}
		if userFrom(r.Context()) == nil && !publicPath(r.URL.Path) {
			s.writeError(w, r, apierrors.NewUnauthorized("Unauthorized"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func publicPath(p string) bool {
	switch p {
	case "/healthz", "/livez", "/readyz", "/version", "/version/":
		return true
	}
	return false
}
