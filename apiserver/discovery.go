package apiserver

import (
	"net/http"
	"slices"
	"sort"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/nanokube/nanokube/apiserver/registry"
)

// groupOrder is kube-apiserver's group priority: discovery lists groups in
// this order and kubectl picks the first group that has a resource.
var groupOrder = []string{
	"", "apiregistration.k8s.io", "apps", "events.k8s.io", "authentication.k8s.io",
	"authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io",
	"networking.k8s.io", "policy", "rbac.authorization.k8s.io", "storage.k8s.io",
	"admissionregistration.k8s.io", "apiextensions.k8s.io", "scheduling.k8s.io",
	"coordination.k8s.io", "node.k8s.io", "discovery.k8s.io", "flowcontrol.apiserver.k8s.io",
	"resource.k8s.io", "metrics.k8s.io",
}

// versionOrder ranks versions like Kubernetes: GA before beta before alpha,
// higher numbers first.
func versionLess(a, b string) bool {
	return schemaVersionRank(a) > schemaVersionRank(b)
}

func schemaVersionRank(v string) int {
	rank := 0
	switch {
	case strings.Contains(v, "alpha"):
		rank = 0
	case strings.Contains(v, "beta"):
		rank = 1000
	default:
		rank = 2000
	}
	n := 0
	for _, c := range strings.TrimPrefix(v, "v") {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return rank + n
}

type groupInfo struct {
	name     string
	versions []string // preferred first
	byVer    map[string][]*registry.Resource
}

func buildGroups(resources []*registry.Resource) []groupInfo {
	idx := map[string]*groupInfo{}
	for _, r := range resources {
		g := idx[r.GroupVersion.Group]
		if g == nil {
			g = &groupInfo{name: r.GroupVersion.Group, byVer: map[string][]*registry.Resource{}}
			idx[r.GroupVersion.Group] = g
		}
		if _, ok := g.byVer[r.GroupVersion.Version]; !ok {
			g.versions = append(g.versions, r.GroupVersion.Version)
		}
		g.byVer[r.GroupVersion.Version] = append(g.byVer[r.GroupVersion.Version], r)
	}
	var out []groupInfo
	for _, g := range idx {
		sort.Slice(g.versions, func(i, j int) bool { return versionLess(g.versions[i], g.versions[j]) })
		for _, rs := range g.byVer {
			sort.Slice(rs, func(i, j int) bool { return rs[i].Plural < rs[j].Plural })
		}
		out = append(out, *g)
	}
	rank := func(name string) int {
		if i := slices.Index(groupOrder, name); i >= 0 {
			return i
		}
		return len(groupOrder)
	}
	sort.Slice(out, func(i, j int) bool {
		ri, rj := rank(out[i].name), rank(out[j].name)
		if ri != rj {
			return ri < rj
		}
		return out[i].name < out[j].name
	})
	return out
}

const aggregatedV2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

func wantsAggregated(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		p := strings.ReplaceAll(part, " ", "")
		if strings.HasPrefix(p, "application/json") && strings.Contains(p, "g=apidiscovery.k8s.io") && strings.Contains(p, "v=v2") && strings.Contains(p, "as=APIGroupDiscoveryList") {
			return true
		}
	}
	return false
}

// serveAPI answers /api: the legacy version list or the aggregated core group.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if wantsAggregated(r) {
		s.writeAggregated(w, r, true)
		return
	}
	s.writeJSON(w, http.StatusOK, &metav1.APIVersions{
		TypeMeta:                   metav1.TypeMeta{Kind: "APIVersions"},
		Versions:                   []string{"v1"},
		ServerAddressByClientCIDRs: s.serverAddresses(),
	})
}

// serveAPIs answers /apis: the group list or the aggregated groups.
func (s *Server) serveAPIs(w http.ResponseWriter, r *http.Request) {
	if wantsAggregated(r) {
		s.writeAggregated(w, r, false)
		return
	}
	list := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: []metav1.APIGroup{}}
	for _, g := range s.catalog.get().groups {
		if g.name == "" {
			continue
		}
		list.Groups = append(list.Groups, s.apiGroup(g))
	}
	list.Groups = append(list.Groups, s.apiServiceGroups()...)
	s.writeJSON(w, http.StatusOK, list)
}

func (s *Server) apiGroup(g groupInfo) metav1.APIGroup {
	ag := metav1.APIGroup{TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}, Name: g.name}
	for _, v := range g.versions {
		ag.Versions = append(ag.Versions, metav1.GroupVersionForDiscovery{GroupVersion: g.name + "/" + v, Version: v})
	}
	ag.PreferredVersion = ag.Versions[0]
	return ag
}

func (s *Server) serverAddresses() []metav1.ServerAddressByClientCIDR {
	if s.cfg.AdvertiseAddress == nil {
		return nil
	}
	return []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: hostPort(s.cfg.AdvertiseAddress.String(), s.cfg.AdvertisePort)}}
}

// serveGroup answers /apis/<group>.
func (s *Server) serveGroup(w http.ResponseWriter, r *http.Request, group string) {
	for _, g := range s.catalog.get().groups {
		if g.name == group && group != "" {
			ag := s.apiGroup(g)
			s.writeJSON(w, http.StatusOK, &ag)
			return
		}
	}
	s.writeError(w, r, notFoundPath(r))
}

// serveResourceList answers /api/v1 and /apis/<group>/<version>.
func (s *Server) serveResourceList(w http.ResponseWriter, r *http.Request, gv schema.GroupVersion) {
	for _, g := range s.catalog.get().groups {
		if g.name != gv.Group {
			continue
		}
		rs, ok := g.byVer[gv.Version]
		if !ok {
			break
		}
		list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
		for _, res := range rs {
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name: res.Plural, SingularName: res.Singular, Namespaced: res.Namespaced, Kind: res.Kind,
				Verbs: res.Verbs, ShortNames: res.ShortNames, Categories: res.Categories,
			})
			for _, sub := range s.servedSubresources(res) {
				kind, verbs := subresourceKind(res, sub)
				list.APIResources = append(list.APIResources, metav1.APIResource{
					Name: res.Plural + "/" + sub, Namespaced: res.Namespaced, Kind: kind.Kind,
					Group: kind.Group, Version: kind.Version, Verbs: verbs,
				})
			}
		}
		s.writeJSON(w, http.StatusOK, list)
		return
	}
	s.writeError(w, r, notFoundPath(r))
}

func (s *Server) writeAggregated(w http.ResponseWriter, r *http.Request, core bool) {
	list := &apidiscoveryv2.APIGroupDiscoveryList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: "apidiscovery.k8s.io/v2"}}
	for _, g := range s.catalog.get().groups {
		if (g.name == "") != core {
			continue
		}
		gd := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: g.name}}
		for _, v := range g.versions {
			vd := apidiscoveryv2.APIVersionDiscovery{Version: v, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
			for _, res := range g.byVer[v] {
				scope := apidiscoveryv2.ScopeCluster
				if res.Namespaced {
					scope = apidiscoveryv2.ScopeNamespace
				}
				gvk := res.GroupVersionKind()
				rd := apidiscoveryv2.APIResourceDiscovery{
					Resource: res.Plural, SingularResource: res.Singular, Scope: scope, Verbs: res.Verbs,
					ShortNames: res.ShortNames, Categories: res.Categories,
					ResponseKind: &metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
				}
				for _, sub := range s.servedSubresources(res) {
					kind, verbs := subresourceKind(res, sub)
					rd.Subresources = append(rd.Subresources, apidiscoveryv2.APISubresourceDiscovery{
						Subresource: sub, Verbs: verbs,
						ResponseKind: &metav1.GroupVersionKind{Group: kind.Group, Version: kind.Version, Kind: kind.Kind},
					})
				}
				vd.Resources = append(vd.Resources, rd)
			}
			gd.Versions = append(gd.Versions, vd)
		}
		list.Items = append(list.Items, gd)
	}
	if !core {
		list.Items = append(list.Items, s.apiServiceDiscovery()...)
	}
	w.Header().Set("Content-Type", aggregatedV2)
	w.Header().Set("Vary", "Accept")
	s.writeRawJSON(w, http.StatusOK, list)
}

// servedSubresources are the declared subresources this server implements.
func (s *Server) servedSubresources(r *registry.Resource) []string {
	var out []string
	for _, sub := range r.Subresources {
		if s.implements(r, sub) {
			out = append(out, sub)
		}
	}
	return out
}

// implements reports whether a subresource of r is served.
func (s *Server) implements(r *registry.Resource, sub string) bool {
	switch sub {
	case "log":
		return s.cfg.PodLogs != nil
	case "exec", "attach", "portforward":
		return s.cfg.PodStreams != nil
	case "token":
		return s.cfg.TokenSigner != nil
	case "proxy":
		// Pods and services are reached through the pods' port-forward;
		// nodes/proxy (kubelet's own API) is not served.
		return s.cfg.PodStreams != nil && r.GroupVersion.Group == "" && (r.Plural == "pods" || r.Plural == "services")
	}
	return implementedSubresources[sub]
}

// implementedSubresources grows as handlers land; discovery never
// advertises what does not work.
var implementedSubresources = map[string]bool{"status": true, "scale": true, "binding": true, "finalize": true, "ephemeralcontainers": true, "eviction": true, "approval": true}

func subresourceKind(r *registry.Resource, sub string) (schema.GroupVersionKind, []string) {
	rw := []string{"get", "patch", "update"}
	switch sub {
	case "scale":
		return schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}, rw
	case "binding":
		return schema.GroupVersionKind{Version: "v1", Kind: "Binding"}, []string{"create"}
	case "eviction":
		return schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "Eviction"}, []string{"create"}
	case "finalize":
		return r.GroupVersionKind(), []string{"update"}
	case "log":
		return r.GroupVersionKind(), []string{"get"}
	case "exec":
		return schema.GroupVersionKind{Version: "v1", Kind: "PodExecOptions"}, []string{"create", "get"}
	case "attach":
		return schema.GroupVersionKind{Version: "v1", Kind: "PodAttachOptions"}, []string{"create", "get"}
	case "portforward":
		return schema.GroupVersionKind{Version: "v1", Kind: "PodPortForwardOptions"}, []string{"create", "get"}
	case "token":
		return schema.GroupVersionKind{Group: "authentication.k8s.io", Version: "v1", Kind: "TokenRequest"}, []string{"create"}
	}
	return r.GroupVersionKind(), rw
}
