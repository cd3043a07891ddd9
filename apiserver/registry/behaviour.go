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
		r.Default = defaultPodTemplateObject
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
	}
}
