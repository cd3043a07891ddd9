package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/nanokube/nanokube/apiserver/rbac"
	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

// rbacPrefix holds roles, rolebindings, clusterroles and clusterrolebindings.
const rbacPrefix = "/registry/" + rbacv1.GroupName + "/"

// allowed decides a request: system:masters always may, like
// kube-apiserver's privileged-group authorizer; everyone else goes through
// RBAC.
func (s *Server) allowed(u *User, a rbac.Attributes) bool {
	ok, _ := s.decide(u, a)
	return ok
}

func (s *Server) decide(u *User, a rbac.Attributes) (bool, string) {
	if u == nil {
		return false, ""
	}
	if isMaster(u) || s.cfg.AlwaysAllow {
		return true, ""
	}
	return s.rbac.Authorize(rbac.User{Name: u.Name, Groups: u.Groups}, a)
}

// forbidden is kube-apiserver's 403 for a denied request.
func forbidden(u *User, a rbac.Attributes) error {
	name := ""
	if u != nil {
		name = u.Name
	}
	if !a.ResourceRequest {
		return apierrors.NewForbidden(schema.GroupResource{}, "", fmt.Errorf("User %q cannot %s path %q", name, a.Verb, a.Path))
	}
	res := a.Resource
	if a.Subresource != "" {
		res += "/" + a.Subresource
	}
	var msg string
	if a.Namespace != "" {
		msg = fmt.Sprintf("User %q cannot %s resource %q in API group %q in the namespace %q", name, a.Verb, res, a.APIGroup, a.Namespace)
	} else {
		msg = fmt.Sprintf("User %q cannot %s resource %q in API group %q at the cluster scope", name, a.Verb, res, a.APIGroup)
	}
	return apierrors.NewForbidden(schema.GroupResource{Group: a.APIGroup, Resource: a.Resource}, a.Name, errors.New(msg))
}

// resourceAttributes are what a parsed resource request asks for.
func resourceAttributes(r *http.Request, info *requestInfo) rbac.Attributes {
	a := rbac.Attributes{Verb: info.verb, ResourceRequest: true, Namespace: info.namespace, APIGroup: info.res.GroupVersion.Group,
		Resource: info.res.Plural, Subresource: info.subresource, Name: info.name}
	if info.res.Plural == "namespaces" && info.res.GroupVersion.Group == "" && info.name != "" {
		a.Namespace = info.name
	}
	if (info.verb == "list" || info.verb == "watch") && a.Name == "" {
		// A list or watch of one object by name is authorized on that name.
		if sel, err := fields.ParseSelector(r.URL.Query().Get("fieldSelector")); err == nil {
			if n, ok := sel.RequiresExactMatch("metadata.name"); ok {
				a.Name = n
			}
		}
	}
	return a
}

// isResourcePath: /api/v1/<resource...> or /apis/<group>/<version>/<resource...>.
func isResourcePath(p string) bool {
	parts := splitPath(p)
	return (parts[0] == "api" && len(parts) >= 3) || (parts[0] == "apis" && len(parts) >= 4)
}

// authorizeNonResource checks requests for paths (discovery, OpenAPI,
// health, version); resource requests are checked once parsed.
func (s *Server) authorizeNonResource(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Health and version are everyone's (system:public-info-viewer),
		// also before the RBAC objects are loaded at start.
		if isResourcePath(r.URL.Path) || publicPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		verb := strings.ToLower(r.Method)
		if r.Method == http.MethodHead {
			verb = "get"
		}
		a := rbac.Attributes{Verb: verb, Path: r.URL.Path}
		u := userFrom(r.Context())
		if !s.allowed(u, a) {
			s.writeError(w, r, forbidden(u, a))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// syncRBAC loads the RBAC objects stored now into the cache and returns
// the revision to follow them from.
func (s *Server) syncRBAC() (int64, error) {
	kvs, rev, _, err := s.store.List(rbacPrefix, store.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("list RBAC objects: %w", err)
	}
	for _, kv := range kvs {
		if obj := s.decodeRBAC(kv); obj != nil {
			s.rbac.Put(obj, kv.ModRev)
		}
	}
	return rev, nil
}

// runRBAC keeps the cache in step with the store until ctx ends.
func (s *Server) runRBAC(ctx context.Context, from int64) error {
	w, err := s.store.Watch(ctx, rbacPrefix, from)
	if err != nil {
		return fmt.Errorf("watch RBAC objects: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events():
			if !ok {
				if err := w.Err(); err != nil && ctx.Err() == nil {
					return fmt.Errorf("watch RBAC objects: %w", err)
				}
				return nil
			}
			obj := s.decodeRBAC(ev.KV)
			if obj == nil {
				continue
			}
			if ev.Type == store.Delete {
				s.rbac.Delete(obj, ev.KV.ModRev)
			} else {
				s.rbac.Put(obj, ev.KV.ModRev)
			}
		}
	}
}

// writeThroughRBAC applies an RBAC change the server just stored, so the
// next request is decided with it (the watch brings the same change later).
func (s *Server) writeThroughRBAC(res *registry.Resource, obj runtime.Object, deleted bool) {
	if res.GroupVersion.Group != rbacv1.GroupName {
		return
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	rev, err := strconv.ParseInt(m.GetResourceVersion(), 10, 64)
	if err != nil {
		return
	}
	if deleted {
		s.rbac.Delete(obj, rev)
	} else {
		s.rbac.Put(obj, rev)
	}
}

func (s *Server) decodeRBAC(kv store.KV) runtime.Object {
	plural, _, _ := strings.Cut(strings.TrimPrefix(kv.Key, rbacPrefix), "/")
	res := s.resource(rbacv1.SchemeGroupVersion, plural)
	if res == nil {
		return nil
	}
	obj, err := decodeStored(res, kv)
	if err != nil {
		s.log.Error("decode RBAC object", "key", kv.Key, "err", err)
		return nil
	}
	return obj
}
