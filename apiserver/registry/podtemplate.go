package registry

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

func podTemplateBehaviour(r *Resource) {
	r.Default = defaultPodTemplateObject
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Containers", "string", "Names of each container in the template."),
			col("Images", "string", "Images referenced by each container in the template."),
			col("Pod Labels", "string", "The labels for the pod template."),
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			pt := obj.(*corev1.PodTemplate)
			names, images := containersAndImages(pt.Template.Spec.Containers)
			return []interface{}{pt.Name, names, images, labels.FormatLabels(pt.Template.Labels)}, nil
		},
	}
}
