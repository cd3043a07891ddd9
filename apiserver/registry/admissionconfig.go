package registry

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// webhookConfigurationBehaviour: the webhook configurations' table.
func webhookConfigurationBehaviour(r *Resource) {
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{nameCol, col("Webhooks", "integer", "Webhooks indicates the number of webhooks registered in this configuration"), ageCol},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			switch c := obj.(type) {
			case *admissionregistrationv1.MutatingWebhookConfiguration:
				return []interface{}{c.Name, int64(len(c.Webhooks)), age(c.CreationTimestamp)}, nil
			case *admissionregistrationv1.ValidatingWebhookConfiguration:
				return []interface{}{c.Name, int64(len(c.Webhooks)), age(c.CreationTimestamp)}, nil
			}
			return nil, nil
		},
	}
}
