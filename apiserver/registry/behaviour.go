package registry

// attachBehaviour gives a resource its kind's defaults, validation, table
// and field selectors; each lives in the kind's own file.
func attachBehaviour(r *Resource) {
	switch r.GroupVersion.Group + "/" + r.Kind {
	case "/Pod":
		podBehaviour(r)
	case "/Service":
		serviceBehaviour(r)
	case "/ConfigMap":
		configMapBehaviour(r)
	case "/Secret":
		secretBehaviour(r)
	case "/Namespace":
		namespaceBehaviour(r)
	case "/Node":
		nodeBehaviour(r)
	case "/ServiceAccount":
		serviceAccountBehaviour(r)
	case "/Endpoints":
		endpointsBehaviour(r)
	case "/Event":
		eventBehaviour(r)
	case "/ReplicationController":
		replicationControllerBehaviour(r)
	case "/PodTemplate":
		podTemplateBehaviour(r)
	case "/ComponentStatus":
		componentStatusBehaviour(r)
	case "apiregistration.k8s.io/APIService":
		apiServiceBehaviour(r)
	case "apps/Deployment":
		deploymentBehaviour(r)
	case "apps/ReplicaSet":
		replicaSetBehaviour(r)
	case "apps/StatefulSet":
		statefulSetBehaviour(r)
	case "apps/DaemonSet":
		daemonSetBehaviour(r)
	case "batch/Job":
		jobBehaviour(r)
	case "apiextensions.k8s.io/CustomResourceDefinition":
		crdBehaviour(r)
	case "rbac.authorization.k8s.io/Role", "rbac.authorization.k8s.io/ClusterRole":
		roleBehaviour(r)
	case "rbac.authorization.k8s.io/RoleBinding":
		bindingBehaviour(r, false)
	case "rbac.authorization.k8s.io/ClusterRoleBinding":
		bindingBehaviour(r, true)
	case "/LimitRange":
		limitRangeBehaviour(r)
	case "scheduling.k8s.io/PriorityClass":
		priorityClassBehaviour(r)
	case "batch/CronJob":
		cronJobBehaviour(r)
	case "autoscaling/HorizontalPodAutoscaler":
		if r.GroupVersion.Version == "v2" {
			hpaBehaviour(r) // v1 is served through v2 (conversion.go)
		}
	case "policy/PodDisruptionBudget":
		podDisruptionBudgetBehaviour(r)
	case "/ResourceQuota":
		resourceQuotaTable(r)
	case "networking.k8s.io/NetworkPolicy":
		networkPolicyBehaviour(r)
	default:
		kubectlTables(r)
	}
}

// kubectlTables attaches the tables (and the little behaviour) of the
// kinds whose files hold little more than kube-apiserver's printers.
func kubectlTables(r *Resource) {
	switch r.GroupVersion.Group + "/" + r.Kind {
	case "events.k8s.io/Event":
		eventsV1Behaviour(r)
	case "networking.k8s.io/Ingress":
		ingressBehaviour(r)
	case "networking.k8s.io/IngressClass":
		ingressClassBehaviour(r)
	case "coordination.k8s.io/Lease":
		leaseBehaviour(r)
	case "discovery.k8s.io/EndpointSlice":
		endpointSliceBehaviour(r)
	case "certificates.k8s.io/CertificateSigningRequest":
		certificateSigningRequestBehaviour(r)
	case "/PersistentVolumeClaim":
		persistentVolumeClaimBehaviour(r)
	case "/PersistentVolume":
		persistentVolumeBehaviour(r)
	case "storage.k8s.io/StorageClass":
		storageClassBehaviour(r)
	case "storage.k8s.io/CSIDriver":
		csiDriverBehaviour(r)
	case "storage.k8s.io/CSINode":
		csiNodeBehaviour(r)
	case "storage.k8s.io/CSIStorageCapacity":
		csiStorageCapacityBehaviour(r)
	case "storage.k8s.io/VolumeAttachment":
		volumeAttachmentBehaviour(r)
	case "storage.k8s.io/VolumeAttributesClass":
		volumeAttributesClassBehaviour(r)
	case "admissionregistration.k8s.io/MutatingWebhookConfiguration", "admissionregistration.k8s.io/ValidatingWebhookConfiguration":
		webhookConfigurationBehaviour(r)
	case "resource.k8s.io/ResourceClaim":
		resourceClaimBehaviour(r)
	case "resource.k8s.io/ResourceSlice":
		resourceSliceBehaviour(r)
	case "resource.k8s.io/DeviceClass", "resource.k8s.io/ResourceClaimTemplate":
		nameAgeTable(r)
	case "apps/ControllerRevision":
		controllerRevisionBehaviour(r)
	}
}
