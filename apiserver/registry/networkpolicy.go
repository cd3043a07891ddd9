package registry

import (
	"net"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func networkPolicyBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) { defaultNetworkPolicy(obj.(*networkingv1.NetworkPolicy)) }
	r.Validate = func(obj runtime.Object) field.ErrorList {
		return validateNetworkPolicy(obj.(*networkingv1.NetworkPolicy))
	}
	r.ValidateUpdate = func(obj, _ runtime.Object) field.ErrorList {
		return validateNetworkPolicy(obj.(*networkingv1.NetworkPolicy))
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Pod-Selector", "string", networkingv1.NetworkPolicySpec{}.SwaggerDoc()["podSelector"]),
			ageCol,
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			p := obj.(*networkingv1.NetworkPolicy)
			return []interface{}{p.Name, labelSelectorString(&p.Spec.PodSelector), age(p.CreationTimestamp)}, nil
		},
	}
}

// defaultNetworkPolicy is SetDefaults_NetworkPolicy: ports default to TCP,
// policyTypes to Ingress plus Egress when there are egress rules.
func defaultNetworkPolicy(p *networkingv1.NetworkPolicy) {
	tcp := corev1.ProtocolTCP
	for i := range p.Spec.Ingress {
		for j := range p.Spec.Ingress[i].Ports {
			if p.Spec.Ingress[i].Ports[j].Protocol == nil {
				p.Spec.Ingress[i].Ports[j].Protocol = &tcp
			}
		}
	}
	for i := range p.Spec.Egress {
		for j := range p.Spec.Egress[i].Ports {
			if p.Spec.Egress[i].Ports[j].Protocol == nil {
				p.Spec.Egress[i].Ports[j].Protocol = &tcp
			}
		}
	}
	if len(p.Spec.PolicyTypes) == 0 {
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(p.Spec.Egress) > 0 {
			p.Spec.PolicyTypes = append(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
	}
}

// validateNetworkPolicy is kube-apiserver's ValidateNetworkPolicySpec.
func validateNetworkPolicy(p *networkingv1.NetworkPolicy) field.ErrorList {
	spec := field.NewPath("spec")
	opts := metav1validation.LabelSelectorValidationOptions{}
	errs := metav1validation.ValidateLabelSelector(&p.Spec.PodSelector, opts, spec.Child("podSelector"))
	for i, rule := range p.Spec.Ingress {
		path := spec.Child("ingress").Index(i)
		for j, port := range rule.Ports {
			errs = append(errs, validatePolicyPort(port, path.Child("ports").Index(j))...)
		}
		for j, peer := range rule.From {
			errs = append(errs, validatePolicyPeer(peer, opts, path.Child("from").Index(j))...)
		}
	}
	for i, rule := range p.Spec.Egress {
		path := spec.Child("egress").Index(i)
		for j, port := range rule.Ports {
			errs = append(errs, validatePolicyPort(port, path.Child("ports").Index(j))...)
		}
		for j, peer := range rule.To {
			errs = append(errs, validatePolicyPeer(peer, opts, path.Child("to").Index(j))...)
		}
	}
	allowed := []string{string(networkingv1.PolicyTypeIngress), string(networkingv1.PolicyTypeEgress)}
	if len(p.Spec.PolicyTypes) > len(allowed) {
		errs = append(errs, field.Invalid(spec.Child("policyTypes"), p.Spec.PolicyTypes, "may not specify more than two policyTypes"))
	}
	for i, t := range p.Spec.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			errs = append(errs, field.NotSupported(spec.Child("policyTypes").Index(i), t, allowed))
		}
	}
	return errs
}

func validatePolicyPort(port networkingv1.NetworkPolicyPort, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if port.Protocol != nil && *port.Protocol != corev1.ProtocolTCP && *port.Protocol != corev1.ProtocolUDP && *port.Protocol != corev1.ProtocolSCTP {
		errs = append(errs, field.NotSupported(path.Child("protocol"), *port.Protocol, []string{string(corev1.ProtocolTCP), string(corev1.ProtocolUDP), string(corev1.ProtocolSCTP)}))
	}
	if port.Port == nil {
		if port.EndPort != nil {
			errs = append(errs, field.Required(path.Child("port"), "must be specified when endPort is specified"))
		}
		return errs
	}
	if port.Port.Type == intstr.Int {
		for _, msg := range validation.IsValidPortNum(int(port.Port.IntVal)) {
			errs = append(errs, field.Invalid(path.Child("port"), port.Port.IntVal, msg))
		}
		if port.EndPort != nil {
			if *port.EndPort < port.Port.IntVal {
				errs = append(errs, field.Invalid(path.Child("endPort"), *port.EndPort, "must be greater than or equal to `port`"))
			}
			for _, msg := range validation.IsValidPortNum(int(*port.EndPort)) {
				errs = append(errs, field.Invalid(path.Child("endPort"), *port.EndPort, msg))
			}
		}
		return errs
	}
	if port.EndPort != nil {
		errs = append(errs, field.Invalid(path.Child("endPort"), *port.EndPort, "may not be specified when `port` is non-numeric"))
	}
	for _, msg := range validation.IsValidPortName(port.Port.StrVal) {
		errs = append(errs, field.Invalid(path.Child("port"), port.Port.StrVal, msg))
	}
	return errs
}

func validatePolicyPeer(peer networkingv1.NetworkPolicyPeer, opts metav1validation.LabelSelectorValidationOptions, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	if peer.PodSelector != nil {
		n++
		errs = append(errs, metav1validation.ValidateLabelSelector(peer.PodSelector, opts, path.Child("podSelector"))...)
	}
	if peer.NamespaceSelector != nil {
		n++
		errs = append(errs, metav1validation.ValidateLabelSelector(peer.NamespaceSelector, opts, path.Child("namespaceSelector"))...)
	}
	if peer.IPBlock != nil {
		n++
		errs = append(errs, validateIPBlock(peer.IPBlock, path.Child("ipBlock"))...)
	}
	switch {
	case n == 0:
		errs = append(errs, field.Required(path, "must specify a peer"))
	case peer.IPBlock != nil && n > 1:
		errs = append(errs, field.Forbidden(path, "may not specify both ipBlock and another peer"))
	}
	return errs
}

func validateIPBlock(b *networkingv1.IPBlock, path *field.Path) field.ErrorList {
	if b.CIDR == "" {
		return field.ErrorList{field.Required(path.Child("cidr"), "")}
	}
	_, cidr, err := net.ParseCIDR(b.CIDR)
	if err != nil {
		return field.ErrorList{field.Invalid(path.Child("cidr"), b.CIDR, "must be a valid CIDR (e.g. 10.0.0.0/16 or 2001:db8::/64)")}
	}
	var errs field.ErrorList
	ones, _ := cidr.Mask.Size()
	for i, e := range b.Except {
		_, ex, err := net.ParseCIDR(e)
		if err != nil {
			errs = append(errs, field.Invalid(path.Child("except").Index(i), e, "must be a valid CIDR (e.g. 10.0.0.0/16 or 2001:db8::/64)"))
			continue
		}
		exOnes, _ := ex.Mask.Size()
		if !cidr.Contains(ex.IP) || exOnes <= ones {
			errs = append(errs, field.Invalid(path.Child("except").Index(i), e, "must be a strict subset of `cidr`"))
		}
	}
	return errs
}
