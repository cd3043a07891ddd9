package apiserver

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/nanokube/nanokube/apiserver/rbac"
)

// impersonate switches to the identity the Impersonate-* headers ask for
// when the caller may impersonate it (RBAC verb "impersonate" on users,
// groups, serviceaccounts, uids and userextras), like kube-apiserver.
func (s *Server) impersonate(r *http.Request) (*http.Request, error) {
	name := r.Header.Get("Impersonate-User")
	groups := r.Header.Values("Impersonate-Group")
	uid := r.Header.Get("Impersonate-Uid")
	extra := map[string][]string{}
	for k, vs := range r.Header {
		if key, ok := strings.CutPrefix(k, "Impersonate-Extra-"); ok {
			unescaped, err := url.PathUnescape(key)
			if err != nil {
				return r, badRequest("malformed extra key for impersonation request: %v", err)
			}
			extra[strings.ToLower(unescaped)] = vs
		}
	}
	if name == "" {
		if len(groups) > 0 || uid != "" || len(extra) > 0 {
			return r, badRequest("requested %v without impersonating a user", impersonationSummary(groups, uid, extra))
		}
		return r, nil
	}
	caller := userFrom(r.Context())
	check := func(a rbac.Attributes) error {
		a.Verb = "impersonate"
		a.ResourceRequest = true
		if s.allowed(caller, a) {
			return nil
		}
		return forbidden(caller, a)
	}
	u := &User{Name: name, UID: uid, Extra: extra}
	if ns, sa, ok := serviceAccountOf(name); ok {
		if err := check(rbac.Attributes{Resource: "serviceaccounts", Namespace: ns, Name: sa}); err != nil {
			return r, err
		}
		if len(groups) == 0 {
			groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ns}
		}
	} else if err := check(rbac.Attributes{Resource: "users", Name: name}); err != nil {
		return r, err
	}
	for _, g := range groups {
		if err := check(rbac.Attributes{Resource: "groups", Name: g}); err != nil {
			return r, err
		}
	}
	if uid != "" {
		if err := check(rbac.Attributes{APIGroup: "authentication.k8s.io", Resource: "uids", Name: uid}); err != nil {
			return r, err
		}
	}
	for k, vs := range extra {
		for _, v := range vs {
			if err := check(rbac.Attributes{APIGroup: "authentication.k8s.io", Resource: "userextras", Subresource: k, Name: v}); err != nil {
				return r, err
			}
		}
	}
	u.Groups = append([]string{}, groups...)
	if name == userAnonymous {
		if !slices.Contains(u.Groups, groupUnauthenticated) {
			u.Groups = append(u.Groups, groupUnauthenticated)
		}
	} else if !slices.Contains(u.Groups, groupAuthenticated) && !slices.Contains(u.Groups, groupUnauthenticated) {
		u.Groups = append(u.Groups, groupAuthenticated)
	}
	r = r.WithContext(withUser(r.Context(), u))
	for k := range r.Header {
		if strings.HasPrefix(k, "Impersonate-") {
			r.Header.Del(k)
		}
	}
	return r, nil
}

func impersonationSummary(groups []string, uid string, extra map[string][]string) string {
	var parts []string
	for _, g := range groups {
		parts = append(parts, fmt.Sprintf("{Group  %s  }", g))
	}
	if uid != "" {
		parts = append(parts, fmt.Sprintf("{UID  %s  }", uid))
	}
	for k, vs := range extra {
		for _, v := range vs {
			parts = append(parts, fmt.Sprintf("{UserExtra  %s  %s}", v, k))
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// serviceAccountOf splits "system:serviceaccount:NS:NAME".
func serviceAccountOf(user string) (string, string, bool) {
	rest, ok := strings.CutPrefix(user, saUserPrefix)
	if !ok {
		return "", "", false
	}
	ns, name, ok := strings.Cut(rest, ":")
	return ns, name, ok && ns != "" && name != "" && !strings.Contains(name, ":")
}
