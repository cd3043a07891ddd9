package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/nanokube/nanokube/apiserver/registry"
)

// requestInfo is what a resource path and method ask for.
type requestInfo struct {
	verb        string // get list watch create update patch delete deletecollection
	res         *registry.Resource
	namespace   string
	name        string
	subresource string
	proxyPath   string // what follows .../proxy, for the proxy subresource
	// trackAs is the subresource managedFields record for a write that
	// goes through the main resource's path (scale).
	trackAs string
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, p := range []string{"/healthz", "/livez", "/readyz"} {
		mux.HandleFunc(p, s.health)
		mux.HandleFunc(p+"/", s.health)
	}
	mux.HandleFunc("/version", s.version)
	mux.HandleFunc("/version/", s.version)
	mux.HandleFunc("/openapi/", func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.OpenAPI == nil {
			s.writeError(w, r, notFoundPath(r))
			return
		}
		s.cfg.OpenAPI.ServeHTTP(w, r)
	})
	mux.HandleFunc("/api", s.serveAPI)
	mux.HandleFunc("/api/", s.serveAPITree)
	mux.HandleFunc("/apis", s.serveAPIs)
	mux.HandleFunc("/apis/", s.serveAPITree)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, notFoundPath(r))
	})
	return s.authenticate(s.authorizeNonResource(mux))
}

func notFoundPath(r *http.Request) error {
	return apierrors.NewGenericServerResponse(http.StatusNotFound, r.Method, schema.GroupResource{}, "", "the server could not find the requested resource", 0, false)
}

// serveAPITree handles /api/v1/... and /apis/<group>/<version>/...
func (s *Server) serveAPITree(w http.ResponseWriter, r *http.Request) {
	parts := splitPath(r.URL.Path)
	if s.serveAPIService(w, r, parts) {
		return
	}
	var gv schema.GroupVersion
	var rest []string
	switch {
	case parts[0] == "api" && len(parts) >= 2:
		gv, rest = schema.GroupVersion{Version: parts[1]}, parts[2:]
	case parts[0] == "apis" && len(parts) == 2:
		s.serveGroup(w, r, parts[1])
		return
	case parts[0] == "apis" && len(parts) >= 3:
		gv, rest = schema.GroupVersion{Group: parts[1], Version: parts[2]}, parts[3:]
	default:
		s.writeError(w, r, notFoundPath(r))
		return
	}
	if len(rest) == 0 {
		s.serveResourceList(w, r, gv)
		return
	}
	info, err := s.parseResourcePath(r, gv, rest)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if a := resourceAttributes(r, info); !s.allowed(userFrom(r.Context()), a) {
		s.writeError(w, r, forbidden(userFrom(r.Context()), a))
		return
	}
	s.serveResource(w, r, info)
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return []string{""}
	}
	return strings.Split(p, "/")
}

func (s *Server) parseResourcePath(r *http.Request, gv schema.GroupVersion, parts []string) (*requestInfo, error) {
	watchPath := false
	if parts[0] == "watch" {
		watchPath, parts = true, parts[1:]
	}
	info := &requestInfo{}
	if len(parts) >= 3 && parts[0] == "namespaces" && parts[2] != "finalize" && parts[2] != "status" {
		info.namespace, parts = parts[1], parts[2:]
	}
	if len(parts) > 3 && parts[2] == "proxy" {
		info.proxyPath = "/" + strings.Join(parts[3:], "/")
		if strings.HasSuffix(r.URL.Path, "/") && info.proxyPath != "/" {
			info.proxyPath += "/"
		}
		parts = parts[:3]
	} else if len(parts) == 3 && parts[2] == "proxy" && strings.HasSuffix(r.URL.Path, "/") {
		info.proxyPath = "/"
	}
	if len(parts) == 0 || len(parts) > 3 {
		return nil, notFoundPath(r)
	}
	res := s.resource(gv, parts[0])
	if res == nil {
		return nil, notFoundPath(r)
	}
	info.res = res
	if len(parts) > 1 {
		info.name = parts[1]
	}
	if len(parts) > 2 {
		info.subresource = parts[2]
		if !s.implements(res, info.subresource) || !contains(res.Subresources, info.subresource) {
			return nil, notFoundPath(r)
		}
	}
	if res.Namespaced && info.namespace == "" && info.name != "" {
		return nil, notFoundPath(r) // a namespaced object needs its namespace
	}
	if !res.Namespaced && info.namespace != "" {
		return nil, notFoundPath(r)
	}
	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case watchPath || q.Get("watch") == "true" || q.Get("watch") == "1":
			info.verb = "watch"
		case info.name == "":
			info.verb = "list"
		default:
			info.verb = "get"
		}
	case http.MethodPost:
		info.verb = "create"
	case http.MethodPut:
		info.verb = "update"
	case http.MethodPatch:
		info.verb = "patch"
	case http.MethodDelete:
		info.verb = "delete"
		if info.name == "" {
			info.verb = "deletecollection"
		}
	case http.MethodOptions:
		if info.subresource != "proxy" {
			return nil, apierrors.NewMethodNotSupported(res.GroupVersionResource().GroupResource(), r.Method)
		}
		info.verb = "get"
	default:
		return nil, apierrors.NewMethodNotSupported(res.GroupVersionResource().GroupResource(), r.Method)
	}
	if info.subresource == "" && !contains(res.Verbs, info.verb) {
		return nil, apierrors.NewMethodNotSupported(res.GroupVersionResource().GroupResource(), info.verb)
	}
	if (info.verb == "create" && info.name != "" && info.subresource == "") || (info.name == "" && (info.verb == "update" || info.verb == "patch")) {
		return nil, apierrors.NewMethodNotSupported(res.GroupVersionResource().GroupResource(), info.verb)
	}
	return info, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// serveResource dispatches a resource request.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, info *requestInfo) {
	if c := info.res.Custom; c != nil && c.Deprecated {
		addWarningText(w, c.DeprecationWarning)
	}
	var err error
	if info.res.Deprecation != "" {
		addWarning(w, errors.New(info.res.Deprecation))
	}
	switch {
	case isReview(info):
		err = s.serveReview(w, r, info)
	case info.subresource == "log":
		err = s.serveLog(w, r, info)
	case info.subresource == "exec" || info.subresource == "attach" || info.subresource == "portforward":
		err = s.serveStream(w, r, info)
	case info.subresource == "eviction":
		err = s.serveEviction(w, r, info)
	case info.subresource == "token":
		err = s.serveToken(w, r, info)
	case info.subresource == "scale":
		err = s.serveScale(w, r, info)
	case info.subresource == "proxy":
		err = s.serveProxy(w, r, info)
	case isComponentStatus(info.res) && (info.verb == "get" || info.verb == "list"):
		err = s.serveComponentStatus(w, r, info)
	case isAPIServiceResource(info.res) && (info.verb == "get" || info.verb == "list"):
		err = s.serveGenerated(w, r, info, s.apiServiceObjects())
	case info.subresource == "binding" || (info.res.Kind == "Binding" && info.verb == "create"):
		err = s.serveBinding(w, r, info)
	case info.verb == "get":
		err = s.get(w, r, info)
	case info.verb == "list":
		err = s.list(w, r, info)
	case info.verb == "watch":
		err = s.watch(w, r, info)
	case info.verb == "create":
		err = s.create(w, r, info)
	case info.verb == "update":
		err = s.update(w, r, info)
	case info.verb == "patch":
		err = s.patch(w, r, info)
	case info.verb == "delete":
		err = s.delete(w, r, info)
	case info.verb == "deletecollection":
		err = s.deleteCollection(w, r, info)
	default:
		err = fmt.Errorf("unhandled verb %q", info.verb)
	}
	if err != nil {
		s.writeError(w, r, err)
	}
}
