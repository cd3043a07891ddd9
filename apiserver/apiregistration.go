package apiserver

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/nanokube/nanokube/apiserver/registry"
)

// apiServicePriority is an APIService's groupPriorityMinimum and
// versionPriority.
type apiServicePriority struct{ group, version int32 }

// apiServicePriorities is kube-apiserver's table (the generic control-plane
// groups merged with the kube ones) for the group versions nanokube serves.
// kube-apiserver registers no APIService for a built-in group version that
// is missing here. Two rows are not from that table's copy we checked:
// apiregistration.k8s.io (the aggregator's own group, not in the table) and
// resource.k8s.io/v1 (newer than it; beside v1beta2's 16200/15).
var apiServicePriorities = map[schema.GroupVersion]apiServicePriority{
	{Group: "", Version: "v1"}:                             {18000, 1},
	{Group: "apiregistration.k8s.io", Version: "v1"}:       {18000, 15},
	{Group: "apps", Version: "v1"}:                         {17800, 15},
	{Group: "events.k8s.io", Version: "v1"}:                {17750, 15},
	{Group: "authentication.k8s.io", Version: "v1"}:        {17700, 15},
	{Group: "authorization.k8s.io", Version: "v1"}:         {17600, 15},
	{Group: "autoscaling", Version: "v1"}:                  {17500, 15},
	{Group: "autoscaling", Version: "v2"}:                  {17500, 30},
	{Group: "batch", Version: "v1"}:                        {17400, 15},
	{Group: "certificates.k8s.io", Version: "v1"}:          {17300, 15},
	{Group: "networking.k8s.io", Version: "v1"}:            {17200, 15},
	{Group: "policy", Version: "v1"}:                       {17100, 15},
	{Group: "rbac.authorization.k8s.io", Version: "v1"}:    {17000, 15},
	{Group: "storage.k8s.io", Version: "v1"}:               {16800, 15},
	{Group: "apiextensions.k8s.io", Version: "v1"}:         {16700, 15},
	{Group: "admissionregistration.k8s.io", Version: "v1"}: {16700, 15},
	{Group: "scheduling.k8s.io", Version: "v1"}:            {16600, 15},
	{Group: "coordination.k8s.io", Version: "v1"}:          {16500, 15},
	{Group: "node.k8s.io", Version: "v1"}:                  {16300, 15},
	{Group: "discovery.k8s.io", Version: "v1"}:             {16200, 15},
	{Group: "resource.k8s.io", Version: "v1"}:              {16200, 21},
	{Group: "flowcontrol.apiserver.k8s.io", Version: "v1"}: {16100, 21},
}

// Custom resources get what kube-apiserver's CRD registration gives them;
// an APIService added with AddAPIService gets metrics-server's values.
var (
	customPriority = apiServicePriority{1000, 100}
	addedPriority  = apiServicePriority{100, 100}
)

func isAPIServiceResource(res *registry.Resource) bool {
	return res.GroupVersion.Group == apiregistrationv1.GroupName && res.Plural == "apiservices"
}

// apiServiceObjects are the APIServices kube-apiserver would show for what
// this server serves, one per group version, named <version>.<group> and
// sorted by name. All are local: spec.service is nil and Available is True.
func (s *Server) apiServiceObjects() []runtime.Object {
	var out []runtime.Object
	add := func(gv schema.GroupVersion, p apiServicePriority) {
		out = append(out, &apiregistrationv1.APIService{
			TypeMeta:   metav1.TypeMeta{APIVersion: apiregistrationv1.SchemeGroupVersion.String(), Kind: "APIService"},
			ObjectMeta: metav1.ObjectMeta{Name: gv.Version + "." + gv.Group, CreationTimestamp: s.started},
			Spec:       apiregistrationv1.APIServiceSpec{Group: gv.Group, Version: gv.Version, GroupPriorityMinimum: p.group, VersionPriority: p.version},
			Status: apiregistrationv1.APIServiceStatus{Conditions: []apiregistrationv1.APIServiceCondition{{
				Type: apiregistrationv1.Available, Status: apiregistrationv1.ConditionTrue, LastTransitionTime: s.started,
				Reason: "Local", Message: "Local APIServices are always available",
			}}},
		})
	}
	for _, g := range s.catalog.get().groups {
		for _, v := range g.versions {
			gv := schema.GroupVersion{Group: g.name, Version: v}
			p, ok := apiServicePriorities[gv]
			if rs := g.byVer[v]; !ok && len(rs) > 0 && rs[0].Custom != nil {
				p, ok = customPriority, true
			}
			if ok {
				add(gv, p)
			}
		}
	}
	for _, svc := range s.cfg.APIServices {
		add(svc.GroupVersion, addedPriority)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].(*apiregistrationv1.APIService).Name < out[j].(*apiregistrationv1.APIService).Name
	})
	return out
}

// serveGenerated answers get and list of a resource whose objects are
// computed per request (componentstatuses, apiservices).
func (s *Server) serveGenerated(w http.ResponseWriter, r *http.Request, info *requestInfo, objs []runtime.Object) error {
	if info.name != "" {
		for _, o := range objs {
			if m, err := meta.Accessor(o); err == nil && m.GetName() == info.name {
				s.respond(w, r, info.res, http.StatusOK, o)
				return nil
			}
		}
		return apierrors.NewNotFound(info.res.GroupVersionResource().GroupResource(), info.name)
	}
	rev := strconv.FormatInt(s.store.Rev(), 10)
	if a, _ := negotiate(r); a.as == "Table" {
		t, err := s.toTable(info.res, objs, r)
		if err != nil {
			return err
		}
		t.ResourceVersion = rev
		s.writeObject(w, r, http.StatusOK, t, metav1.SchemeGroupVersion)
		return nil
	}
	list := info.res.NewList()
	list.GetObjectKind().SetGroupVersionKind(info.res.GroupVersion.WithKind(info.res.ListKind))
	if err := meta.SetList(list, objs); err != nil {
		return fmt.Errorf("build %s list: %w", info.res.Plural, err)
	}
	if la, err := meta.ListAccessor(list); err == nil {
		la.SetResourceVersion(rev)
	}
	s.writeObject(w, r, http.StatusOK, list, info.res.GroupVersion)
	return nil
}
