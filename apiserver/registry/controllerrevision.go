package registry

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// controllerRevisionBehaviour: kube-apiserver's printer, the owning
// controller as kind.group/name ("daemonset.apps/ds") and the revision.
func controllerRevisionBehaviour(r *Resource) {
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{nameCol,
			col("Controller", "string", "Controller of the object"),
			col("Revision", "integer", appsv1.ControllerRevision{}.SwaggerDoc()["revision"]),
			ageCol},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			cr := obj.(*appsv1.ControllerRevision)
			controller := "<none>"
			if ref := metav1.GetControllerOf(cr); ref != nil {
				gv, err := schema.ParseGroupVersion(ref.APIVersion)
				if err != nil {
					return nil, err
				}
				controller = strings.ToLower(gv.WithKind(ref.Kind).GroupKind().String()) + "/" + ref.Name
			}
			return []interface{}{cr.Name, controller, cr.Revision, age(cr.CreationTimestamp)}, nil
		},
	}
}
