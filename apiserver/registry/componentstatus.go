package registry

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// componentStatusBehaviour: the objects are computed by the API server on
// each read; only the table lives here.
func componentStatusBehaviour(r *Resource) {
	r.Deprecation = "v1 ComponentStatus is deprecated in v1.19+"
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Status", "string", "Status of the component conditions"),
			col("Message", "string", "Message of the component conditions"),
			col("Error", "string", "Error of the component conditions"),
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			cs := obj.(*corev1.ComponentStatus)
			status, msg, errText := "Unknown", "", ""
			for _, c := range cs.Conditions {
				if c.Type == corev1.ComponentHealthy {
					status = "Unhealthy"
					if c.Status == corev1.ConditionTrue {
						status = "Healthy"
					}
					msg, errText = c.Message, c.Error
					break
				}
			}
			return []interface{}{cs.Name, status, msg, errText}, nil
		},
	}
}
