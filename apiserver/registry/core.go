package registry

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func configMapBehaviour(r *Resource) {
	r.Validate = func(obj runtime.Object) field.ErrorList {
		cm := obj.(*corev1.ConfigMap)
		var keys []string
		for k := range cm.Data {
			keys = append(keys, k)
		}
		for k := range cm.BinaryData {
			keys = append(keys, k)
		}
		return validateDataKeys(keys, field.NewPath("data"))
	}
	r.ValidateUpdate = func(obj, old runtime.Object) field.ErrorList {
		o := old.(*corev1.ConfigMap)
		if o.Immutable != nil && *o.Immutable {
			n := obj.(*corev1.ConfigMap)
			if fmt.Sprint(n.Data) != fmt.Sprint(o.Data) || fmt.Sprint(n.BinaryData) != fmt.Sprint(o.BinaryData) || n.Immutable == nil || !*n.Immutable {
				return field.ErrorList{field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set")}
			}
		}
		return nil
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{nameCol, col("Data", "string", corev1.ConfigMap{}.SwaggerDoc()["data"]), ageCol},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			cm := obj.(*corev1.ConfigMap)
			return []interface{}{cm.Name, int64(len(cm.Data) + len(cm.BinaryData)), age(cm.CreationTimestamp)}, nil
		},
	}
}

func validateDataKeys(keys []string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	sort.Strings(keys)
	for _, k := range keys {
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(path.Key(k), k, msg))
		}
	}
	return errs
}

func secretBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) {
		s := obj.(*corev1.Secret)
		if s.Type == "" {
			s.Type = corev1.SecretTypeOpaque
		}
		// stringData is folded into data on every write, updates and
		// patches (kubectl apply) included, as the v1 conversion does.
		mergeStringData(s)
	}
	r.Validate = func(obj runtime.Object) field.ErrorList {
		s := obj.(*corev1.Secret)
		var keys []string
		for k := range s.Data {
			keys = append(keys, k)
		}
		for k := range s.StringData {
			keys = append(keys, k)
		}
		errs := validateDataKeys(keys, field.NewPath("data"))
		need := map[corev1.SecretType][]string{
			corev1.SecretTypeTLS:              {corev1.TLSCertKey, corev1.TLSPrivateKeyKey},
			corev1.SecretTypeDockerConfigJson: {corev1.DockerConfigJsonKey},
			corev1.SecretTypeDockercfg:        {corev1.DockerConfigKey},
		}
		for _, k := range need[s.Type] {
			if _, ok := s.Data[k]; !ok {
				if _, ok := s.StringData[k]; !ok {
					errs = append(errs, field.Required(field.NewPath("data").Key(k), ""))
				}
			}
		}
		return errs
	}
	r.ValidateUpdate = func(obj, old runtime.Object) field.ErrorList {
		n, o := obj.(*corev1.Secret), old.(*corev1.Secret)
		if n.Type != o.Type {
			return field.ErrorList{field.Invalid(field.NewPath("type"), n.Type, "field is immutable")}
		}
		return nil
	}
	r.PrepareForCreate = func(obj runtime.Object) { mergeStringData(obj.(*corev1.Secret)) }
	r.FieldSet = func(obj runtime.Object) fields.Set { return fields.Set{"type": string(obj.(*corev1.Secret).Type)} }
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{nameCol, col("Type", "string", corev1.Secret{}.SwaggerDoc()["type"]), col("Data", "string", corev1.Secret{}.SwaggerDoc()["data"]), ageCol},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			s := obj.(*corev1.Secret)
			return []interface{}{s.Name, string(s.Type), int64(len(s.Data)), age(s.CreationTimestamp)}, nil
		},
	}
}

// mergeStringData folds the write-only stringData into data, like
// kube-apiserver's secret strategy.
func mergeStringData(s *corev1.Secret) {
	if len(s.StringData) == 0 {
		return
	}
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
}

func namespaceBehaviour(r *Resource) {
	r.ValidateName = apivalidation.ValidateNamespaceName
	r.PrepareForCreate = func(obj runtime.Object) {
		ns := obj.(*corev1.Namespace)
		ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
		ns.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
	r.FieldSet = func(obj runtime.Object) fields.Set {
		return fields.Set{"status.phase": string(obj.(*corev1.Namespace).Status.Phase)}
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{nameCol, col("Status", "string", "The status of the namespace"), ageCol},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			ns := obj.(*corev1.Namespace)
			return []interface{}{ns.Name, string(ns.Status.Phase), age(ns.CreationTimestamp)}, nil
		},
	}
}

func nodeBehaviour(r *Resource) {
	r.FieldSet = func(obj runtime.Object) fields.Set {
		return fields.Set{"spec.unschedulable": fmt.Sprint(obj.(*corev1.Node).Spec.Unschedulable)}
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Status", "string", "The status of the node"),
			col("Roles", "string", "The roles of the node"),
			ageCol,
			col("Version", "string", corev1.NodeSystemInfo{}.SwaggerDoc()["kubeletVersion"]),
			wide(col("Internal-IP", "string", corev1.NodeStatus{}.SwaggerDoc()["addresses"])),
			wide(col("External-IP", "string", corev1.NodeStatus{}.SwaggerDoc()["addresses"])),
			wide(col("OS-Image", "string", corev1.NodeSystemInfo{}.SwaggerDoc()["osImage"])),
			wide(col("Kernel-Version", "string", corev1.NodeSystemInfo{}.SwaggerDoc()["kernelVersion"])),
			wide(col("Container-Runtime", "string", corev1.NodeSystemInfo{}.SwaggerDoc()["containerRuntimeVersion"])),
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			n := obj.(*corev1.Node)
			status := "Unknown"
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady {
					status = "NotReady"
					if c.Status == corev1.ConditionTrue {
						status = "Ready"
					}
				}
			}
			if n.Spec.Unschedulable {
				status += ",SchedulingDisabled"
			}
			var roles []string
			for k := range n.Labels {
				if role, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && role != "" {
					roles = append(roles, role)
				}
			}
			sort.Strings(roles)
			addr := func(t corev1.NodeAddressType) string {
				for _, a := range n.Status.Addresses {
					if a.Type == t {
						return a.Address
					}
				}
				return "<none>"
			}
			info := n.Status.NodeInfo
			return []interface{}{n.Name, status, orNone(strings.Join(roles, ",")), age(n.CreationTimestamp), info.KubeletVersion,
				addr(corev1.NodeInternalIP), addr(corev1.NodeExternalIP), orNone(info.OSImage), orNone(info.KernelVersion), orNone(info.ContainerRuntimeVersion)}, nil
		},
	}
}

func serviceAccountBehaviour(r *Resource) {
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{nameCol, col("Secrets", "string", corev1.ServiceAccount{}.SwaggerDoc()["secrets"]), ageCol},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			sa := obj.(*corev1.ServiceAccount)
			return []interface{}{sa.Name, int64(len(sa.Secrets)), age(sa.CreationTimestamp)}, nil
		},
	}
}

func endpointsBehaviour(r *Resource) {
	r.Deprecation = "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{nameCol, col("Endpoints", "string", corev1.Endpoints{}.SwaggerDoc()["subsets"]), ageCol},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			ep := obj.(*corev1.Endpoints)
			// upstream's formatEndpoints: port by port, then address.
			var list []string
			total := 0
			for _, s := range ep.Subsets {
				if len(s.Ports) == 0 {
					for _, a := range s.Addresses {
						total++
						if len(list) < 3 {
							list = append(list, a.IP)
						}
					}
					continue
				}
				for _, p := range s.Ports {
					for _, a := range s.Addresses {
						total++
						if len(list) < 3 {
							list = append(list, net.JoinHostPort(a.IP, strconv.Itoa(int(p.Port))))
						}
					}
				}
			}
			cell := strings.Join(list, ",")
			if total > len(list) {
				cell += fmt.Sprintf(" + %d more...", total-len(list))
			}
			// Since 1.33 an Endpoints without addresses shows an empty cell.
			return []interface{}{ep.Name, cell, age(ep.CreationTimestamp)}, nil
		},
	}
}

func eventBehaviour(r *Resource) {
	r.FieldSet = func(obj runtime.Object) fields.Set {
		e := obj.(*corev1.Event)
		return fields.Set{
			"involvedObject.kind": e.InvolvedObject.Kind, "involvedObject.namespace": e.InvolvedObject.Namespace,
			"involvedObject.name": e.InvolvedObject.Name, "involvedObject.uid": string(e.InvolvedObject.UID),
			"involvedObject.apiVersion": e.InvolvedObject.APIVersion, "involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
			"involvedObject.fieldPath": e.InvolvedObject.FieldPath, "reason": e.Reason, "reportingComponent": e.ReportingController,
			"source": e.Source.Component, "type": e.Type,
		}
	}
	r.Table = eventTable(coreEventCells)
}
