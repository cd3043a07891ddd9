package registry

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	resourcev1 "k8s.io/api/resource/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

// kind is one row of the built-in resource table: the names and flags that
// discovery and `kubectl api-resources` show, as kube-apiserver serves them.
type kind struct {
	gv         schema.GroupVersion
	kind       string
	plural     string
	namespaced bool
	short      []string
	categories []string
	verbs      []string
	sub        []string
	status     bool
	generation bool
	obj, list  runtime.Object
	graceful   bool
}

var (
	all    = []string{"all"}
	crud   = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	create = []string{"create"}
	read   = []string{"get", "list"}
)

// builtinKinds lists every built-in resource; per-kind behaviour (defaults,
// validation, tables, field selectors) is attached by the kind's own file.
func builtinKinds() []kind {
	core := corev1.SchemeGroupVersion
	apps := appsv1.SchemeGroupVersion
	batch := batchv1.SchemeGroupVersion
	net := networkingv1.SchemeGroupVersion
	rbac := rbacv1.SchemeGroupVersion
	storage := storagev1.SchemeGroupVersion
	return []kind{
		{gv: core, kind: "Binding", plural: "bindings", namespaced: true, verbs: create, obj: &corev1.Binding{}},
		{gv: core, kind: "ComponentStatus", plural: "componentstatuses", short: []string{"cs"}, verbs: read, obj: &corev1.ComponentStatus{}, list: &corev1.ComponentStatusList{}},
		{gv: core, kind: "ConfigMap", plural: "configmaps", namespaced: true, short: []string{"cm"}, obj: &corev1.ConfigMap{}, list: &corev1.ConfigMapList{}},
		{gv: core, kind: "Endpoints", plural: "endpoints", namespaced: true, short: []string{"ep"}, obj: &corev1.Endpoints{}, list: &corev1.EndpointsList{}},
		{gv: core, kind: "Event", plural: "events", namespaced: true, short: []string{"ev"}, obj: &corev1.Event{}, list: &corev1.EventList{}},
		{gv: core, kind: "LimitRange", plural: "limitranges", namespaced: true, short: []string{"limits"}, obj: &corev1.LimitRange{}, list: &corev1.LimitRangeList{}},
		{gv: core, kind: "Namespace", plural: "namespaces", short: []string{"ns"}, sub: []string{"finalize", "status"}, status: true, obj: &corev1.Namespace{}, list: &corev1.NamespaceList{}, verbs: []string{"create", "delete", "get", "list", "patch", "update", "watch"}},
		{gv: core, kind: "Node", plural: "nodes", short: []string{"no"}, sub: []string{"proxy", "status"}, status: true, obj: &corev1.Node{}, list: &corev1.NodeList{}},
		{gv: core, kind: "PersistentVolumeClaim", plural: "persistentvolumeclaims", namespaced: true, short: []string{"pvc"}, sub: []string{"status"}, status: true, obj: &corev1.PersistentVolumeClaim{}, list: &corev1.PersistentVolumeClaimList{}},
		{gv: core, kind: "PersistentVolume", plural: "persistentvolumes", short: []string{"pv"}, sub: []string{"status"}, status: true, obj: &corev1.PersistentVolume{}, list: &corev1.PersistentVolumeList{}},
		{gv: core, kind: "Pod", plural: "pods", namespaced: true, short: []string{"po"}, categories: all, sub: []string{"attach", "binding", "ephemeralcontainers", "eviction", "exec", "log", "portforward", "proxy", "resize", "status"}, status: true, graceful: true, obj: &corev1.Pod{}, list: &corev1.PodList{}},
		{gv: core, kind: "PodTemplate", plural: "podtemplates", namespaced: true, obj: &corev1.PodTemplate{}, list: &corev1.PodTemplateList{}},
		{gv: core, kind: "ReplicationController", plural: "replicationcontrollers", namespaced: true, short: []string{"rc"}, categories: all, sub: []string{"scale", "status"}, status: true, generation: true, obj: &corev1.ReplicationController{}, list: &corev1.ReplicationControllerList{}},
		{gv: core, kind: "ResourceQuota", plural: "resourcequotas", namespaced: true, short: []string{"quota"}, sub: []string{"status"}, status: true, obj: &corev1.ResourceQuota{}, list: &corev1.ResourceQuotaList{}},
		{gv: core, kind: "Secret", plural: "secrets", namespaced: true, obj: &corev1.Secret{}, list: &corev1.SecretList{}},
		{gv: core, kind: "ServiceAccount", plural: "serviceaccounts", namespaced: true, short: []string{"sa"}, sub: []string{"token"}, obj: &corev1.ServiceAccount{}, list: &corev1.ServiceAccountList{}},
		{gv: core, kind: "Service", plural: "services", namespaced: true, short: []string{"svc"}, categories: all, sub: []string{"proxy", "status"}, status: true, obj: &corev1.Service{}, list: &corev1.ServiceList{}, verbs: []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}},

		{gv: admissionregistrationv1.SchemeGroupVersion, kind: "MutatingWebhookConfiguration", plural: "mutatingwebhookconfigurations", categories: []string{"api-extensions"}, generation: true, obj: &admissionregistrationv1.MutatingWebhookConfiguration{}, list: &admissionregistrationv1.MutatingWebhookConfigurationList{}},
		{gv: admissionregistrationv1.SchemeGroupVersion, kind: "ValidatingWebhookConfiguration", plural: "validatingwebhookconfigurations", categories: []string{"api-extensions"}, generation: true, obj: &admissionregistrationv1.ValidatingWebhookConfiguration{}, list: &admissionregistrationv1.ValidatingWebhookConfigurationList{}},
		{gv: apiextensionsv1.SchemeGroupVersion, kind: "CustomResourceDefinition", plural: "customresourcedefinitions", short: []string{"crd", "crds"}, categories: []string{"api-extensions"}, sub: []string{"status"}, status: true, generation: true, obj: &apiextensionsv1.CustomResourceDefinition{}, list: &apiextensionsv1.CustomResourceDefinitionList{}},
		// APIServices are generated from what is served (apiregistration.go
		// in apiserver/); there is no aggregation layer to register more.
		{gv: apiregistrationv1.SchemeGroupVersion, kind: "APIService", plural: "apiservices", categories: []string{"api-extensions"}, verbs: read, obj: &apiregistrationv1.APIService{}, list: &apiregistrationv1.APIServiceList{}},
		{gv: apps, kind: "ControllerRevision", plural: "controllerrevisions", namespaced: true, obj: &appsv1.ControllerRevision{}, list: &appsv1.ControllerRevisionList{}},
		{gv: apps, kind: "DaemonSet", plural: "daemonsets", namespaced: true, short: []string{"ds"}, categories: all, sub: []string{"status"}, status: true, generation: true, obj: &appsv1.DaemonSet{}, list: &appsv1.DaemonSetList{}},
		{gv: apps, kind: "Deployment", plural: "deployments", namespaced: true, short: []string{"deploy"}, categories: all, sub: []string{"scale", "status"}, status: true, generation: true, obj: &appsv1.Deployment{}, list: &appsv1.DeploymentList{}},
		{gv: apps, kind: "ReplicaSet", plural: "replicasets", namespaced: true, short: []string{"rs"}, categories: all, sub: []string{"scale", "status"}, status: true, generation: true, obj: &appsv1.ReplicaSet{}, list: &appsv1.ReplicaSetList{}},
		{gv: apps, kind: "StatefulSet", plural: "statefulsets", namespaced: true, short: []string{"sts"}, categories: all, sub: []string{"scale", "status"}, status: true, generation: true, obj: &appsv1.StatefulSet{}, list: &appsv1.StatefulSetList{}},
		{gv: authenticationv1.SchemeGroupVersion, kind: "SelfSubjectReview", plural: "selfsubjectreviews", verbs: create, obj: &authenticationv1.SelfSubjectReview{}},
		{gv: authenticationv1.SchemeGroupVersion, kind: "TokenReview", plural: "tokenreviews", verbs: create, obj: &authenticationv1.TokenReview{}},
		{gv: authorizationv1.SchemeGroupVersion, kind: "LocalSubjectAccessReview", plural: "localsubjectaccessreviews", namespaced: true, verbs: create, obj: &authorizationv1.LocalSubjectAccessReview{}},
		{gv: authorizationv1.SchemeGroupVersion, kind: "SelfSubjectAccessReview", plural: "selfsubjectaccessreviews", verbs: create, obj: &authorizationv1.SelfSubjectAccessReview{}},
		{gv: authorizationv1.SchemeGroupVersion, kind: "SelfSubjectRulesReview", plural: "selfsubjectrulesreviews", verbs: create, obj: &authorizationv1.SelfSubjectRulesReview{}},
		{gv: authorizationv1.SchemeGroupVersion, kind: "SubjectAccessReview", plural: "subjectaccessreviews", verbs: create, obj: &authorizationv1.SubjectAccessReview{}},
		{gv: autoscalingv1.SchemeGroupVersion, kind: "HorizontalPodAutoscaler", plural: "horizontalpodautoscalers", namespaced: true, short: []string{"hpa"}, categories: all, sub: []string{"status"}, status: true, generation: true, obj: &autoscalingv1.HorizontalPodAutoscaler{}, list: &autoscalingv1.HorizontalPodAutoscalerList{}},
		{gv: autoscalingv2.SchemeGroupVersion, kind: "HorizontalPodAutoscaler", plural: "horizontalpodautoscalers", namespaced: true, short: []string{"hpa"}, categories: all, sub: []string{"status"}, status: true, generation: true, obj: &autoscalingv2.HorizontalPodAutoscaler{}, list: &autoscalingv2.HorizontalPodAutoscalerList{}},
		{gv: batch, kind: "CronJob", plural: "cronjobs", namespaced: true, short: []string{"cj"}, categories: all, sub: []string{"status"}, status: true, generation: true, obj: &batchv1.CronJob{}, list: &batchv1.CronJobList{}},
		{gv: batch, kind: "Job", plural: "jobs", namespaced: true, categories: all, sub: []string{"status"}, status: true, generation: true, obj: &batchv1.Job{}, list: &batchv1.JobList{}},
		{gv: certificatesv1.SchemeGroupVersion, kind: "CertificateSigningRequest", plural: "certificatesigningrequests", short: []string{"csr"}, sub: []string{"approval", "status"}, status: true, obj: &certificatesv1.CertificateSigningRequest{}, list: &certificatesv1.CertificateSigningRequestList{}},
		{gv: coordinationv1.SchemeGroupVersion, kind: "Lease", plural: "leases", namespaced: true, obj: &coordinationv1.Lease{}, list: &coordinationv1.LeaseList{}},
		{gv: discoveryv1.SchemeGroupVersion, kind: "EndpointSlice", plural: "endpointslices", namespaced: true, obj: &discoveryv1.EndpointSlice{}, list: &discoveryv1.EndpointSliceList{}},
		{gv: eventsv1.SchemeGroupVersion, kind: "Event", plural: "events", namespaced: true, short: []string{"ev"}, obj: &eventsv1.Event{}, list: &eventsv1.EventList{}},
		{gv: net, kind: "IngressClass", plural: "ingressclasses", obj: &networkingv1.IngressClass{}, list: &networkingv1.IngressClassList{}},
		{gv: net, kind: "Ingress", plural: "ingresses", namespaced: true, short: []string{"ing"}, sub: []string{"status"}, status: true, generation: true, obj: &networkingv1.Ingress{}, list: &networkingv1.IngressList{}},
		{gv: net, kind: "NetworkPolicy", plural: "networkpolicies", namespaced: true, short: []string{"netpol"}, generation: true, obj: &networkingv1.NetworkPolicy{}, list: &networkingv1.NetworkPolicyList{}},
		{gv: policyv1.SchemeGroupVersion, kind: "PodDisruptionBudget", plural: "poddisruptionbudgets", namespaced: true, short: []string{"pdb"}, sub: []string{"status"}, status: true, generation: true, obj: &policyv1.PodDisruptionBudget{}, list: &policyv1.PodDisruptionBudgetList{}},
		{gv: rbac, kind: "ClusterRoleBinding", plural: "clusterrolebindings", obj: &rbacv1.ClusterRoleBinding{}, list: &rbacv1.ClusterRoleBindingList{}},
		{gv: rbac, kind: "ClusterRole", plural: "clusterroles", obj: &rbacv1.ClusterRole{}, list: &rbacv1.ClusterRoleList{}},
		{gv: rbac, kind: "RoleBinding", plural: "rolebindings", namespaced: true, obj: &rbacv1.RoleBinding{}, list: &rbacv1.RoleBindingList{}},
		{gv: rbac, kind: "Role", plural: "roles", namespaced: true, obj: &rbacv1.Role{}, list: &rbacv1.RoleList{}},
		{gv: resourcev1.SchemeGroupVersion, kind: "DeviceClass", plural: "deviceclasses", generation: true, obj: &resourcev1.DeviceClass{}, list: &resourcev1.DeviceClassList{}},
		{gv: resourcev1.SchemeGroupVersion, kind: "ResourceClaim", plural: "resourceclaims", namespaced: true, sub: []string{"status"}, status: true, obj: &resourcev1.ResourceClaim{}, list: &resourcev1.ResourceClaimList{}},
		{gv: resourcev1.SchemeGroupVersion, kind: "ResourceClaimTemplate", plural: "resourceclaimtemplates", namespaced: true, obj: &resourcev1.ResourceClaimTemplate{}, list: &resourcev1.ResourceClaimTemplateList{}},
		{gv: resourcev1.SchemeGroupVersion, kind: "ResourceSlice", plural: "resourceslices", generation: true, obj: &resourcev1.ResourceSlice{}, list: &resourcev1.ResourceSliceList{}},
		{gv: schedulingv1.SchemeGroupVersion, kind: "PriorityClass", plural: "priorityclasses", short: []string{"pc"}, obj: &schedulingv1.PriorityClass{}, list: &schedulingv1.PriorityClassList{}},
		{gv: storage, kind: "CSIDriver", plural: "csidrivers", obj: &storagev1.CSIDriver{}, list: &storagev1.CSIDriverList{}},
		{gv: storage, kind: "CSINode", plural: "csinodes", obj: &storagev1.CSINode{}, list: &storagev1.CSINodeList{}},
		{gv: storage, kind: "CSIStorageCapacity", plural: "csistoragecapacities", namespaced: true, obj: &storagev1.CSIStorageCapacity{}, list: &storagev1.CSIStorageCapacityList{}},
		{gv: storage, kind: "StorageClass", plural: "storageclasses", short: []string{"sc"}, obj: &storagev1.StorageClass{}, list: &storagev1.StorageClassList{}},
		{gv: storage, kind: "VolumeAttributesClass", plural: "volumeattributesclasses", short: []string{"vac"}, obj: &storagev1.VolumeAttributesClass{}, list: &storagev1.VolumeAttributesClassList{}},
		{gv: storage, kind: "VolumeAttachment", plural: "volumeattachments", sub: []string{"status"}, status: true, obj: &storagev1.VolumeAttachment{}, list: &storagev1.VolumeAttachmentList{}},
	}
}

// Resources returns every built-in resource with its behaviour attached.
func Resources() []*Resource {
	kinds := builtinKinds()
	out := make([]*Resource, 0, len(kinds))
	for _, k := range kinds {
		r := &Resource{
			GroupVersion:      k.gv,
			Kind:              k.kind,
			ListKind:          k.kind + "List",
			Plural:            k.plural,
			Singular:          lower(k.kind),
			Namespaced:        k.namespaced,
			ShortNames:        k.short,
			Categories:        k.categories,
			Verbs:             k.verbs,
			Subresources:      k.sub,
			HasStatus:         k.status,
			HasSpecGeneration: k.generation,
			GracefulDelete:    k.graceful,
		}
		if r.Verbs == nil {
			r.Verbs = crud
		}
		obj, list := k.obj, k.list
		r.New = func() runtime.Object { return obj.DeepCopyObject() }
		if list != nil {
			r.NewList = func() runtime.Object { return list.DeepCopyObject() }
		}
		attachBehaviour(r)
		out = append(out, r)
	}
	wireConversions(out)
	return out
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
