package apiserver

import (
	"context"
	"errors"
	"net/http"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/nanokube/nanokube/apiserver/registry"
)

// ComponentCheck is one control-plane part that `kubectl get
// componentstatuses` reports on (kube-apiserver probes the scheduler's and
// the controller manager's /healthz; ours run in-process).
type ComponentCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

func isComponentStatus(res *registry.Resource) bool {
	return res.GroupVersion.Group == "" && res.Plural == "componentstatuses"
}

// componentStatuses probes every component now, sorted by name like
// kube-apiserver; the store stands in for etcd-0.
func (s *Server) componentStatuses(ctx context.Context) []runtime.Object {
	checks := append([]ComponentCheck{{Name: "etcd-0", Check: s.storeHealth}}, s.cfg.Components...)
	sort.Slice(checks, func(i, j int) bool { return checks[i].Name < checks[j].Name })
	out := make([]runtime.Object, 0, len(checks))
	for _, c := range checks {
		cond := corev1.ComponentCondition{Type: corev1.ComponentHealthy, Status: corev1.ConditionTrue, Message: "ok"}
		if c.Name == "etcd-0" {
			cond.Message = `{"health":"true","reason":""}`
		}
		if err := c.Check(ctx); err != nil {
			cond = corev1.ComponentCondition{Type: corev1.ComponentHealthy, Status: corev1.ConditionFalse, Error: err.Error()}
		}
		out = append(out, &corev1.ComponentStatus{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ComponentStatus"},
			ObjectMeta: metav1.ObjectMeta{Name: c.Name},
			Conditions: []corev1.ComponentCondition{cond},
		})
	}
	return out
}

func (s *Server) storeHealth(context.Context) error {
	if _, err := s.store.Get(objectKey(s.resource(schemaCoreV1, "namespaces"), "", metav1.NamespaceDefault)); err != nil {
		return errors.New("store: " + err.Error())
	}
	return nil
}

// serveComponentStatus answers get and list of componentstatuses.
func (s *Server) serveComponentStatus(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	return s.serveGenerated(w, r, info, s.componentStatuses(r.Context()))
}
