package registry

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestNetworkPolicyDefaultsAndValidation(t *testing.T) {
	p80 := intstr.FromInt32(80)
	named := intstr.FromString("http")
	end := int32(90)
	low := int32(70)
	sctp, icmp := corev1.ProtocolSCTP, corev1.Protocol("ICMP")
	p := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "np", Namespace: "default"}, Spec: networkingv1.NetworkPolicySpec{
		Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &p80}}}},
		Egress:  []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &sctp, Port: &p80, EndPort: &end}}}},
	}}
	defaultNetworkPolicy(p)
	if got := p.Spec.PolicyTypes; len(got) != 2 || got[0] != networkingv1.PolicyTypeIngress || got[1] != networkingv1.PolicyTypeEgress {
		t.Errorf("policyTypes = %v", got)
	}
	if *p.Spec.Ingress[0].Ports[0].Protocol != corev1.ProtocolTCP || *p.Spec.Egress[0].Ports[0].Protocol != corev1.ProtocolSCTP {
		t.Errorf("port protocols not defaulted: %v", p.Spec)
	}
	if errs := validateNetworkPolicy(p); len(errs) != 0 {
		t.Errorf("valid policy: %v", errs)
	}
	bad := &networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{
		PolicyTypes: []networkingv1.PolicyType{"Sideways"},
		Ingress: []networkingv1.NetworkPolicyIngressRule{{
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &icmp}, {Port: &named, EndPort: &end}, {Port: &p80, EndPort: &low}},
			From: []networkingv1.NetworkPolicyPeer{{}, {IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"192.168.0.0/16"}},
				PodSelector: &metav1.LabelSelector{}}},
		}},
	}}
	got := validateNetworkPolicy(bad).ToAggregate().Error()
	for _, want := range []string{
		`spec.policyTypes[0]: Unsupported value: "Sideways"`,
		`spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP"`,
		"spec.ingress[0].ports[1].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
		"spec.ingress[0].ports[2].endPort: Invalid value: 70: must be greater than or equal to `port`",
		"spec.ingress[0].from[0]: Required value: must specify a peer",
		"spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer",
		"spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: \"192.168.0.0/16\": must be a strict subset of `cidr`",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
}
