package apiserver

import (
	"net/http"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/nanokube/nanokube/apiserver/rbac"
)

// APIService is a group version served by another handler, like an API
// behind kube-apiserver's aggregation layer (metrics-server's
// v1beta1.metrics.k8s.io): discovery lists it, and every request under
// /apis/<group>/<version>/ goes to Handler after authentication and RBAC.
type APIService struct {
	GroupVersion schema.GroupVersion
	Resources    []metav1.APIResource
	Handler      http.Handler
}

func (s *Server) apiService(group, version string) *APIService {
	for i := range s.cfg.APIServices {
		gv := s.cfg.APIServices[i].GroupVersion
		if gv.Group == group && (version == "" || gv.Version == version) {
			return &s.cfg.APIServices[i]
		}
	}
	return nil
}

// serveAPIService answers a path of an APIService's group (parts is the
// split URL path); it reports whether the path was one.
func (s *Server) serveAPIService(w http.ResponseWriter, r *http.Request, parts []string) bool {
	if len(parts) < 2 || parts[0] != "apis" {
		return false
	}
	version := ""
	if len(parts) >= 3 {
		version = parts[2]
	}
	svc := s.apiService(parts[1], version)
	if svc == nil {
		return false
	}
	switch len(parts) {
	case 2:
		g := s.apiServiceGroup(svc.GroupVersion.Group)
		s.writeJSON(w, http.StatusOK, &g)
	case 3:
		list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: svc.GroupVersion.String(), APIResources: svc.Resources}
		s.writeJSON(w, http.StatusOK, list)
	default:
		if a := apiServiceAttributes(r, parts); !s.allowed(userFrom(r.Context()), a) {
			s.writeError(w, r, forbidden(userFrom(r.Context()), a))
			return true
		}
		svc.Handler.ServeHTTP(w, r)
	}
	return true
}

// apiServiceAttributes are what a request to an APIService's resource
// (/apis/g/v/[namespaces/ns/]resource[/name[/sub]]) asks for.
func apiServiceAttributes(r *http.Request, parts []string) rbac.Attributes {
	a := rbac.Attributes{ResourceRequest: true, APIGroup: parts[1]}
	rest := parts[3:]
	if len(rest) >= 3 && rest[0] == "namespaces" {
		a.Namespace, rest = rest[1], rest[2:]
	}
	if len(rest) > 0 {
		a.Resource = rest[0]
	}
	if len(rest) > 1 {
		a.Name = rest[1]
	}
	if len(rest) > 2 {
		a.Subresource = rest[2]
	}
	switch {
	case r.URL.Query().Get("watch") == "true":
		a.Verb = "watch"
	case r.Method == http.MethodGet && a.Name == "":
		a.Verb = "list"
	case r.Method == http.MethodGet:
		a.Verb = "get"
	default:
		a.Verb = strings.ToLower(r.Method)
	}
	return a
}

func (s *Server) apiServiceGroup(group string) metav1.APIGroup {
	g := metav1.APIGroup{TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}, Name: group}
	for _, svc := range s.cfg.APIServices {
		if svc.GroupVersion.Group == group {
			g.Versions = append(g.Versions, metav1.GroupVersionForDiscovery{GroupVersion: svc.GroupVersion.String(), Version: svc.GroupVersion.Version})
		}
	}
	g.PreferredVersion = g.Versions[0]
	return g
}

// apiServiceGroups are the APIService groups for /apis.
func (s *Server) apiServiceGroups() []metav1.APIGroup {
	var out []metav1.APIGroup
	seen := map[string]bool{}
	for _, svc := range s.cfg.APIServices {
		if g := svc.GroupVersion.Group; !seen[g] {
			seen[g] = true
			out = append(out, s.apiServiceGroup(g))
		}
	}
	return out
}

// apiServiceDiscovery are the APIService groups for aggregated discovery.
func (s *Server) apiServiceDiscovery() []apidiscoveryv2.APIGroupDiscovery {
	var out []apidiscoveryv2.APIGroupDiscovery
	for _, svc := range s.cfg.APIServices {
		vd := apidiscoveryv2.APIVersionDiscovery{Version: svc.GroupVersion.Version, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
		for _, res := range svc.Resources {
			scope := apidiscoveryv2.ScopeCluster
			if res.Namespaced {
				scope = apidiscoveryv2.ScopeNamespace
			}
			vd.Resources = append(vd.Resources, apidiscoveryv2.APIResourceDiscovery{
				Resource: res.Name, SingularResource: res.SingularName, Scope: scope, Verbs: res.Verbs, ShortNames: res.ShortNames,
				ResponseKind: &metav1.GroupVersionKind{Group: svc.GroupVersion.Group, Version: svc.GroupVersion.Version, Kind: res.Kind},
			})
		}
		merged := false
		for i := range out {
			if out[i].Name == svc.GroupVersion.Group {
				out[i].Versions, merged = append(out[i].Versions, vd), true
			}
		}
		if !merged {
			out = append(out, apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: svc.GroupVersion.Group}, Versions: []apidiscoveryv2.APIVersionDiscovery{vd}})
		}
	}
	return out
}

// AddAPIService serves svc too; call it before the server runs.
func (s *Server) AddAPIService(svc APIService) {
	s.cfg.APIServices = append(s.cfg.APIServices, svc)
}
