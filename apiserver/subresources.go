package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nanokube/nanokube/apiserver/registry"
)

// scaleOf reads the scale of a workload through its unstructured form, so
// every kind with spec.replicas and a selector works the same way.
func scaleOf(res *registry.Resource, obj runtime.Object) (*autoscalingv1.Scale, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	m, _ := meta.Accessor(obj)
	sc := &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
		ObjectMeta: metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
			ResourceVersion: m.GetResourceVersion(), CreationTimestamp: m.GetCreationTimestamp()},
	}
	if res.Custom != nil && res.Custom.Scale != nil {
		// A CRD's scale subresource names its paths.
		sp := res.Custom.Scale
		if v, ok, _ := unstructured.NestedFieldNoCopy(u, jsonPathFields(sp.SpecReplicasPath)...); ok {
			sc.Spec.Replicas = int32(asInt(v))
		}
		if v, ok, _ := unstructured.NestedFieldNoCopy(u, jsonPathFields(sp.StatusReplicasPath)...); ok {
			sc.Status.Replicas = int32(asInt(v))
		}
		if sp.LabelSelectorPath != nil {
			if v, ok, _ := unstructured.NestedString(u, jsonPathFields(*sp.LabelSelectorPath)...); ok {
				sc.Status.Selector = v
			}
		}
		return sc, nil
	}
	spec, _ := u["spec"].(map[string]any)
	status, _ := u["status"].(map[string]any)
	sc.Spec.Replicas = int32(asInt(spec["replicas"]))
	sc.Status.Replicas = int32(asInt(status["replicas"]))
	switch sel := spec["selector"].(type) {
	case map[string]any:
		if _, isLabelSelector := sel["matchLabels"]; isLabelSelector || sel["matchExpressions"] != nil {
			var ls metav1.LabelSelector
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(sel, &ls); err != nil {
				return nil, err
			}
			s, err := metav1.LabelSelectorAsSelector(&ls)
			if err != nil {
				return nil, err
			}
			sc.Status.Selector = s.String()
		} else {
			set := map[string]string{}
			for k, v := range sel {
				set[k] = fmt.Sprint(v)
			}
			sc.Status.Selector = metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: set})
		}
	}
	return sc, nil
}

// jsonPathFields splits a simple JSON path (".spec.replicas").
func jsonPathFields(p string) []string { return strings.Split(strings.TrimPrefix(p, "."), ".") }

func asInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	case int32:
		return int64(n)
	case int:
		return int64(n)
	}
	return 0
}

// serveScale implements the scale subresource (get, update, patch).
func (s *Server) serveScale(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	res := info.res
	gr := res.GroupVersionResource().GroupResource()
	scaleGV := autoscalingv1.SchemeGroupVersion
	for attempt := 0; attempt < 5; attempt++ {
		obj, _, err := s.getObject(res, info.namespace, info.name)
		if err != nil {
			return err
		}
		cur, err := scaleOf(res, obj)
		if err != nil {
			return err
		}
		if info.verb == "get" {
			s.writeObject(w, r, http.StatusOK, cur, scaleGV)
			return nil
		}
		body, err := readBody(r)
		if err != nil {
			return err
		}
		want := &autoscalingv1.Scale{}
		switch info.verb {
		case "update":
			if err := s.decodeInto(w, r, body, want, scaleGV.WithKind("Scale")); err != nil {
				return err
			}
		case "patch":
			curJSON, _ := json.Marshal(cur)
			patched, err := applyPatch(types.PatchType(contentType(r)), curJSON, body, &autoscalingv1.Scale{})
			if err != nil {
				return err
			}
			if err := json.Unmarshal(patched, want); err != nil {
				return badRequest("%v", err)
			}
		default:
			return apierrors.NewMethodNotSupported(gr, info.verb)
		}
		if want.Spec.Replicas < 0 {
			return apierrors.NewInvalid(scaleGV.WithKind("Scale").GroupKind(), info.name, nil)
		}
		if want.ResourceVersion != "" && want.ResourceVersion != cur.ResourceVersion {
			return apierrors.NewConflict(gr, info.name, errors.New(conflictMsg))
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return err
		}
		replicasPath := []string{"spec", "replicas"}
		if res.Custom != nil && res.Custom.Scale != nil {
			replicasPath = jsonPathFields(res.Custom.Scale.SpecReplicasPath)
		}
		if err := unstructuredSet(u, int64(want.Spec.Replicas), replicasPath...); err != nil {
			return err
		}
		next := res.New()
		if nu, ok := next.(*unstructured.Unstructured); ok {
			nu.Object = u
		} else if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u, next); err != nil {
			return err
		}
		sub := *info
		sub.subresource, sub.trackAs = "", "scale"
		updated, _, err := s.updateObject(r, res, &sub, next)
		if apierrors.IsConflict(err) && want.ResourceVersion == "" {
			continue
		}
		if err != nil {
			return err
		}
		out, err := scaleOf(res, updated)
		if err != nil {
			return err
		}
		s.writeObject(w, r, http.StatusOK, out, scaleGV)
		return nil
	}
	return apierrors.NewConflict(gr, info.name, errors.New(conflictMsg))
}

func unstructuredSet(u map[string]any, v int64, path ...string) error {
	m := u
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
	return nil
}

// serveBinding assigns a pod to a node (pods/binding and POST bindings),
// like kube-apiserver: spec.nodeName and the PodScheduled condition.
func (s *Server) serveBinding(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	b := &corev1.Binding{}
	if err := s.decodeInto(w, r, body, b, schemaCoreV1.WithKind("Binding")); err != nil {
		return err
	}
	name := info.name
	if name == "" {
		name = b.Name
	}
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		return apierrors.NewInvalid(schemaCoreV1.WithKind("Binding").GroupKind(), name, nil)
	}
	podRes := s.resource(schemaCoreV1, "pods")
	for attempt := 0; attempt < 5; attempt++ {
		obj, kv, err := s.getObject(podRes, info.namespace, name)
		if err != nil {
			return err
		}
		pod := obj.(*corev1.Pod)
		if pod.DeletionTimestamp != nil {
			return apierrors.NewConflict(podRes.GroupVersionResource().GroupResource(), name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", name))
		}
		if pod.Spec.NodeName != "" {
			return apierrors.NewConflict(podRes.GroupVersionResource().GroupResource(), name, fmt.Errorf("pod %s is already assigned to node %q", name, pod.Spec.NodeName))
		}
		pod.Spec.NodeName = b.Target.Name
		for k, v := range b.Annotations {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[k] = v
		}
		setPodCondition(pod, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now()})
		data, err := encodeStored(podRes, pod)
		if err != nil {
			return err
		}
		if _, err := s.store.Update(objectKey(podRes, info.namespace, name), data, kv.ModRev); err != nil {
			if apierrors.IsConflict(storeError(err, podRes.GroupVersionResource().GroupResource(), name)) {
				continue
			}
			return storeError(err, podRes.GroupVersionResource().GroupResource(), name)
		}
		st := &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated}
		s.writeObject(w, r, http.StatusCreated, st, schemaCoreV1)
		return nil
	}
	return apierrors.NewConflict(podRes.GroupVersionResource().GroupResource(), name, errors.New(conflictMsg))
}

func setPodCondition(pod *corev1.Pod, c corev1.PodCondition) {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == c.Type {
			if pod.Status.Conditions[i].Status != c.Status {
				pod.Status.Conditions[i] = c
			}
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, c)
}
