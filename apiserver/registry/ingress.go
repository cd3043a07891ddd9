package registry

import (
	"fmt"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func ingressBehaviour(r *Resource) {
	r.PrepareForCreate = func(obj runtime.Object) { obj.(*networkingv1.Ingress).Status = networkingv1.IngressStatus{} }
	r.Validate = func(obj runtime.Object) field.ErrorList { return validateIngress(obj.(*networkingv1.Ingress)) }
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Class", "string", "The name of the IngressClass resource that should be used for additional configuration"),
			col("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
			col("Address", "string", "Address is a list containing ingress points for the load-balancer"),
			col("Ports", "string", "Ports of TLS configurations that open"),
			ageCol,
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			ing := obj.(*networkingv1.Ingress)
			class := "<none>"
			if ing.Spec.IngressClassName != nil {
				class = *ing.Spec.IngressClassName
			}
			ports := "80"
			if len(ing.Spec.TLS) != 0 {
				ports = "80, 443"
			}
			return []interface{}{ing.Name, class, ingressHosts(ing.Spec.Rules), ingressAddress(ing.Status.LoadBalancer), ports, age(ing.CreationTimestamp)}, nil
		},
	}
}

// ingressHosts is upstream's formatHosts: up to three hosts, "*" for none.
func ingressHosts(rules []networkingv1.IngressRule) string {
	var list []string
	more := false
	for _, rule := range rules {
		if len(list) == 3 {
			more = true
		}
		if !more && rule.Host != "" {
			list = append(list, rule.Host)
		}
	}
	if len(list) == 0 {
		return "*"
	}
	out := strings.Join(list, ",")
	if more {
		out += fmt.Sprintf(" + %d more...", len(rules)-3)
	}
	return out
}

func ingressAddress(s networkingv1.IngressLoadBalancerStatus) string {
	set := map[string]bool{}
	for _, in := range s.Ingress {
		switch {
		case in.IP != "":
			set[in.IP] = true
		case in.Hostname != "":
			set[in.Hostname] = true
		}
	}
	list := make([]string, 0, len(set))
	for a := range set {
		list = append(list, a)
	}
	sort.Strings(list)
	return strings.Join(list, ",")
}

// validateIngress checks what kube-apiserver's networking validation
// checks most often trips over: every path has a type and a backend, and
// Prefix/Exact paths are absolute.
func validateIngress(ing *networkingv1.Ingress) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if ing.Spec.DefaultBackend == nil && len(ing.Spec.Rules) == 0 {
		errs = append(errs, field.Invalid(spec, ing.Spec, "either `defaultBackend` or `rules` must be specified"))
	}
	if ing.Spec.DefaultBackend != nil {
		errs = append(errs, validateIngressBackend(ing.Spec.DefaultBackend, spec.Child("defaultBackend"))...)
	}
	for i, rule := range ing.Spec.Rules {
		rp := spec.Child("rules").Index(i)
		if rule.HTTP == nil {
			continue
		}
		for j, p := range rule.HTTP.Paths {
			pp := rp.Child("http", "paths").Index(j)
			switch {
			case p.PathType == nil:
				errs = append(errs, field.Required(pp.Child("pathType"), "pathType must be specified"))
			case *p.PathType != networkingv1.PathTypeExact && *p.PathType != networkingv1.PathTypePrefix && *p.PathType != networkingv1.PathTypeImplementationSpecific:
				errs = append(errs, field.NotSupported(pp.Child("pathType"), *p.PathType, []string{"Exact", "ImplementationSpecific", "Prefix"}))
			case *p.PathType != networkingv1.PathTypeImplementationSpecific && !strings.HasPrefix(p.Path, "/"):
				errs = append(errs, field.Invalid(pp.Child("path"), p.Path, "must be an absolute path"))
			}
			errs = append(errs, validateIngressBackend(&p.Backend, pp.Child("backend"))...)
		}
	}
	return errs
}

func validateIngressBackend(b *networkingv1.IngressBackend, path *field.Path) field.ErrorList {
	switch {
	case b.Service != nil && b.Resource != nil:
		return field.ErrorList{field.Invalid(path, "", "cannot set both resource and service backends")}
	case b.Service == nil && b.Resource == nil:
		return field.ErrorList{field.Invalid(path, "", "resource or service backend is required")}
	case b.Service != nil && b.Service.Port.Name == "" && b.Service.Port.Number == 0:
		return field.ErrorList{field.Required(path.Child("service", "port"), "port name or number is required")}
	}
	return nil
}

func ingressClassBehaviour(r *Resource) {
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Controller", "string", "Controller that is responsible for handling this class"),
			col("Parameters", "string", "A reference to a resource with additional parameters"),
			ageCol,
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			ic := obj.(*networkingv1.IngressClass)
			params := "<none>"
			if p := ic.Spec.Parameters; p != nil {
				params = p.Kind
				if p.APIGroup != nil {
					params += "." + *p.APIGroup
				}
				params += "/" + p.Name
			}
			return []interface{}{ic.Name, ic.Spec.Controller, params, age(ic.CreationTimestamp)}, nil
		},
	}
}
