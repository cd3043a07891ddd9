package registry

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

// apiServiceBehaviour is kube-aggregator's table: NAME SERVICE AVAILABLE AGE.
func apiServiceBehaviour(r *Resource) {
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Service", "string", "The reference to the service that hosts this API endpoint."),
			col("Available", "string", "Whether this service is available."),
			ageCol,
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			svc := obj.(*apiregistrationv1.APIService)
			service := "Local"
			if ref := svc.Spec.Service; ref != nil {
				service = ref.Namespace + "/" + ref.Name
			}
			available := "Unknown"
			for _, c := range svc.Status.Conditions {
				if c.Type != apiregistrationv1.Available {
					continue
				}
				available = string(c.Status)
				if c.Status != apiregistrationv1.ConditionTrue {
					available = fmt.Sprintf("%s (%s)", c.Status, c.Reason)
				}
			}
			return []interface{}{svc.Name, service, available, age(svc.CreationTimestamp)}, nil
		},
	}
}
