package registry

import (
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func resourceByKind(t *testing.T, group, kind string) *Resource {
	t.Helper()
	for _, r := range Resources() {
		if r.GroupVersion.Group == group && r.Kind == kind {
			return r
		}
	}
	t.Fatalf("no resource %s/%s", group, kind)
	return nil
}

// TestEveryTableRowFitsItsColumns: each kind's row has one cell per
// column, even for an object with nothing set.
func TestEveryTableRowFitsItsColumns(t *testing.T) {
	for _, r := range Resources() {
		if r.Table == nil {
			continue
		}
		cells, err := r.Table.Row(r.New())
		if err != nil {
			t.Errorf("%s: %v", r.Kind, err)
			continue
		}
		if len(cells) != len(r.Table.Columns) {
			t.Errorf("%s/%s: %d cells for %d columns", r.GroupVersion, r.Kind, len(cells), len(r.Table.Columns))
		}
	}
}

// TestTableColumnsAreUpstreams: the column names (and which are -o wide
// only) are kube-apiserver's printers', kind by kind.
func TestTableColumnsAreUpstreams(t *testing.T) {
	cases := []struct {
		group, kind string
		want        string // columns; "*" marks priority 1 (-o wide)
	}{
		{"", "ComponentStatus", "Name Status Message Error"},
		{"", "ResourceQuota", "Name Age Request Limit"},
		{"policy", "PodDisruptionBudget", "Name Min Available Max Unavailable Allowed Disruptions Age"},
		{"autoscaling", "HorizontalPodAutoscaler", "Name Reference Targets MinPods MaxPods Replicas Age"},
		{"", "Endpoints", "Name Endpoints Age"},
		{"", "Event", "Last Seen Type Reason Object *Subobject *Source Message *First Seen *Count *Name"},
		{"events.k8s.io", "Event", "Last Seen Type Reason Object *Subobject *Source Message *First Seen *Count *Name"},
		{"", "Node", "Name Status Roles Age Version *Internal-IP *External-IP *OS-Image *Kernel-Version *Container-Runtime"},
		{"", "Pod", "Name Ready Status Restarts Age *IP *Node *Nominated Node *Readiness Gates"},
		{"apps", "Deployment", "Name Ready Up-to-date Available Age *Containers *Images *Selector"},
		{"apps", "StatefulSet", "Name Ready Age *Containers *Images"},
		{"apps", "ReplicaSet", "Name Desired Current Ready Age *Containers *Images *Selector"},
		{"apps", "ControllerRevision", "Name Controller Revision Age"},
		{"", "Namespace", "Name Status Age"},
		{"", "ConfigMap", "Name Data Age"},
		{"", "Secret", "Name Type Data Age"},
		{"", "ServiceAccount", "Name Secrets Age"},
		{"", "PersistentVolume", "Name Capacity Access Modes Reclaim Policy Status Claim StorageClass VolumeAttributesClass Reason Age *VolumeMode"},
		{"", "PersistentVolumeClaim", "Name Status Volume Capacity Access Modes StorageClass VolumeAttributesClass Age *VolumeMode"},
		{"storage.k8s.io", "StorageClass", "Name Provisioner ReclaimPolicy VolumeBindingMode AllowVolumeExpansion Age"},
		{"networking.k8s.io", "NetworkPolicy", "Name Pod-Selector Age"},
		{"rbac.authorization.k8s.io", "RoleBinding", "Name Role Age *Users *Groups *ServiceAccounts"},
		{"rbac.authorization.k8s.io", "ClusterRoleBinding", "Name Role Age *Users *Groups *ServiceAccounts"},
		{"scheduling.k8s.io", "PriorityClass", "Name Value Global-Default Age PreemptionPolicy"},
		{"apps", "DaemonSet", "Name Desired Current Ready Up-to-date Available Node Selector Age *Containers *Images *Selector"},
		{"batch", "Job", "Name Status Completions Duration Age *Containers *Images *Selector"},
		{"batch", "CronJob", "Name Schedule Timezone Suspend Active Last Schedule Age *Containers *Images *Selector"},
		{"", "PodTemplate", "Name Containers Images Pod Labels"},
		{"", "ReplicationController", "Name Desired Current Ready Age *Containers *Images *Selector"},
		{"", "Service", "Name Type Cluster-IP External-IP Port(s) Age *Selector"},
		{"networking.k8s.io", "Ingress", "Name Class Hosts Address Ports Age"},
		{"networking.k8s.io", "IngressClass", "Name Controller Parameters Age"},
		{"coordination.k8s.io", "Lease", "Name Holder Age"},
		{"discovery.k8s.io", "EndpointSlice", "Name AddressType Ports Endpoints Age"},
		{"certificates.k8s.io", "CertificateSigningRequest", "Name Age SignerName Requestor RequestedDuration Condition"},
		{"storage.k8s.io", "CSIDriver", "Name AttachRequired PodInfoOnMount StorageCapacity TokenRequests RequiresRepublish Modes Age"},
		{"storage.k8s.io", "CSINode", "Name Drivers Age"},
		{"storage.k8s.io", "CSIStorageCapacity", "Name StorageClassName Capacity"},
		{"storage.k8s.io", "VolumeAttachment", "Name Attacher PV Node Attached Age"},
		{"storage.k8s.io", "VolumeAttributesClass", "Name DriverName Age"},
		{"admissionregistration.k8s.io", "MutatingWebhookConfiguration", "Name Webhooks Age"},
		{"admissionregistration.k8s.io", "ValidatingWebhookConfiguration", "Name Webhooks Age"},
		{"resource.k8s.io", "DeviceClass", "Name Age"},
		{"resource.k8s.io", "ResourceClaim", "Name State Age"},
		{"resource.k8s.io", "ResourceClaimTemplate", "Name Age"},
		{"resource.k8s.io", "ResourceSlice", "Name Node Driver Pool Age"},
	}
	for _, c := range cases {
		r := resourceByKind(t, c.group, c.kind)
		if r.Table == nil {
			t.Errorf("%s has no table", c.kind)
			continue
		}
		var got []string
		for _, col := range r.Table.Columns {
			n := col.Name
			if col.Priority == 1 {
				n = "*" + n
			}
			got = append(got, n)
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s columns = %q, want %q", c.kind, strings.Join(got, " "), c.want)
		}
	}
}

func TestTableCells(t *testing.T) {
	class := "nanokube"
	port := int32(443)
	name := "https"
	cases := []struct {
		group, kind string
		obj         runtime.Object
		want        []interface{} // leading cells (Age is left out)
	}{
		{"networking.k8s.io", "Ingress", &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: networkingv1.IngressSpec{IngressClassName: &class, TLS: []networkingv1.IngressTLS{{Hosts: []string{"a.test"}}},
				Rules: []networkingv1.IngressRule{{Host: "a.test"}, {Host: "b.test"}, {Host: "c.test"}, {Host: "d.test"}, {}}},
			Status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{Ingress: []networkingv1.IngressLoadBalancerIngress{{IP: "192.168.49.2"}}}},
		}, []interface{}{"web", "nanokube", "a.test,b.test,c.test + 2 more...", "192.168.49.2", "80, 443"}},
		{"networking.k8s.io", "Ingress", &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "any"}, Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{}}}},
			[]interface{}{"any", "<none>", "*", "", "80"}},
		{"discovery.k8s.io", "EndpointSlice", &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "kubernetes"}, AddressType: discoveryv1.AddressTypeIPv4,
			Ports:     []discoveryv1.EndpointPort{{Name: &name, Port: &port}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}, {Addresses: []string{"10.0.0.2"}}, {Addresses: []string{"10.0.0.3"}}, {Addresses: []string{"10.0.0.4"}}},
		}, []interface{}{"kubernetes", "IPv4", "443", "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."}},
		{"discovery.k8s.io", "EndpointSlice", &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "empty"}, AddressType: discoveryv1.AddressTypeIPv4},
			[]interface{}{"empty", "IPv4", "<unset>", "<unset>"}},
		{"certificates.k8s.io", "CertificateSigningRequest", &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "alice"},
			Spec:       certificatesv1.CertificateSigningRequestSpec{SignerName: "kubernetes.io/kube-apiserver-client", Username: "admin", ExpirationSeconds: int32Ptr(86400)},
			Status:     certificatesv1.CertificateSigningRequestStatus{Conditions: []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved}}, Certificate: []byte("x")},
		}, []interface{}{"alice", "SKIP", "kubernetes.io/kube-apiserver-client", "admin", "24h", "Approved,Issued"}},
		{"", "ComponentStatus", &corev1.ComponentStatus{ObjectMeta: metav1.ObjectMeta{Name: "scheduler"},
			Conditions: []corev1.ComponentCondition{{Type: corev1.ComponentHealthy, Status: corev1.ConditionFalse, Error: "refused"}}},
			[]interface{}{"scheduler", "Unhealthy", "", "refused"}},
		{"", "Endpoints", &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "none"}}, []interface{}{"none", ""}},
		{"", "Endpoints", &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.244.0.2"}, {IP: "10.244.0.3"}}, Ports: []corev1.EndpointPort{{Port: 80}, {Port: 443}}}}},
			[]interface{}{"web", "10.244.0.2:80,10.244.0.3:80,10.244.0.2:443 + 1 more..."}},
		{"", "PodTemplate", &corev1.PodTemplate{ObjectMeta: metav1.ObjectMeta{Name: "t"}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: "x:1"}, {Name: "b", Image: "y:2"}}}}},
			[]interface{}{"t", "a,b", "x:1,y:2", "app=web"}},
		{"apps", "ControllerRevision", &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "ds-5d8f", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "ds", Controller: boolPtr(true)}}}, Revision: 2},
			[]interface{}{"ds-5d8f", "daemonset.apps/ds", int64(2)}},
		{"apps", "ControllerRevision", &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "loose"}, Revision: 1},
			[]interface{}{"loose", "<none>", int64(1)}},
	}
	for _, c := range cases {
		r := resourceByKind(t, c.group, c.kind)
		cells, err := r.Table.Row(c.obj)
		if err != nil {
			t.Fatal(err)
		}
		got := append([]interface{}{}, cells[:len(c.want)]...)
		for i, w := range c.want {
			if w == "SKIP" {
				got[i] = "SKIP"
			}
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s row = %#v, want %#v", c.kind, got, c.want)
		}
	}
}

func TestFieldSelectorsPerKind(t *testing.T) {
	cases := []struct {
		group, kind, field string
		ok                 bool
	}{
		{"", "Pod", "status.phase", true},
		{"", "Pod", "spec.nodeName", true},
		{"", "Pod", "metadata.namespace", true},
		{"", "Pod", "spec.containers", false},
		{"", "Node", "metadata.namespace", false},
		{"", "Node", "spec.unschedulable", true},
		{"", "Event", "involvedObject.name", true},
		{"", "Event", "type", true},
		{"", "Service", "spec.type", true},
		{"", "Service", "spec.clusterIP", true},
		{"", "ReplicationController", "status.replicas", true},
		{"apps", "ReplicaSet", "status.replicas", true},
		{"apps", "Deployment", "status.replicas", false},
		{"batch", "Job", "status.successful", true},
		{"certificates.k8s.io", "CertificateSigningRequest", "spec.signerName", true},
		{"", "ConfigMap", "data", false},
		{"", "ConfigMap", "metadata.name", true},
	}
	for _, c := range cases {
		if got := resourceByKind(t, c.group, c.kind).SelectableField(c.field); got != c.ok {
			t.Errorf("%s field %s selectable = %v, want %v", c.kind, c.field, got, c.ok)
		}
	}
}

func TestCSRApproval(t *testing.T) {
	cur := &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{Username: "alice"}}
	in := cur.DeepCopy()
	in.Spec.Username = "mallory"
	in.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Reason: "KubectlApprove"}}
	if errs := UpdateCSRApproval(cur, in); len(errs) != 0 {
		t.Fatal(errs)
	}
	if cur.Spec.Username != "alice" || CSRCondition(cur) != "Approved" || cur.Status.Conditions[0].Status != "True" || cur.Status.Conditions[0].LastUpdateTime.IsZero() {
		t.Errorf("after approval: %+v", cur)
	}
	in.Status.Conditions = append(in.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateDenied, Status: "True"})
	if errs := UpdateCSRApproval(cur, in); len(errs) == 0 {
		t.Errorf("approved and denied at once was accepted")
	}
}

func TestIngressValidation(t *testing.T) {
	prefix := networkingv1.PathTypePrefix
	backend := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}
	ok := &networkingv1.Ingress{Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "a.test", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
		Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: backend}}}}}}}}
	if errs := validateIngress(ok); len(errs) != 0 {
		t.Errorf("valid ingress: %v", errs)
	}
	bad := ok.DeepCopy()
	bad.Spec.Rules[0].HTTP.Paths[0].PathType = nil
	bad.Spec.Rules[0].HTTP.Paths = append(bad.Spec.Rules[0].HTTP.Paths, networkingv1.HTTPIngressPath{Path: "rel", PathType: &prefix, Backend: backend})
	errs := validateIngress(bad)
	if len(errs) != 2 || errs[0].Field != "spec.rules[0].http.paths[0].pathType" || errs[1].Field != "spec.rules[0].http.paths[1].path" {
		t.Errorf("invalid ingress errors = %v", errs)
	}
}

func TestEventTablesOfBothGroups(t *testing.T) {
	now := metav1.NewMicroTime(time.Now())
	core := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e1"}, Type: "Normal", Reason: "Scheduled", Message: "assigned ",
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web"}, EventTime: now, ReportingController: "default-scheduler", ReportingInstance: "n1"}
	v1 := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e2"}, Type: "Warning", Reason: "BackOff", Note: "back-off",
		Regarding: corev1.ObjectReference{Kind: "Node"}, EventTime: now, DeprecatedSource: corev1.EventSource{Component: "kubelet", Host: "n1"},
		Series: &eventsv1.EventSeries{Count: 5, LastObservedTime: now}}
	for _, c := range []struct {
		group string
		obj   runtime.Object
		want  []interface{}
	}{
		{"", core, []interface{}{"Normal", "Scheduled", "pod/web", "", "default-scheduler, n1", "assigned", int64(1), "e1"}},
		{"events.k8s.io", v1, []interface{}{"Warning", "BackOff", "node", "", "kubelet, n1", "back-off", int64(5), "e2"}},
	} {
		r := resourceByKind(t, c.group, "Event")
		cells, err := r.Table.Row(c.obj)
		if err != nil {
			t.Fatal(err)
		}
		got := []interface{}{cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[8], cells[9]}
		if !reflect.DeepEqual(got, c.want) || len(cells) != len(r.Table.Columns) {
			t.Errorf("%q event row = %#v, want %#v", c.group, cells, c.want)
		}
	}
}
