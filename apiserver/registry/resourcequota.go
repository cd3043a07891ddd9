package registry

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// resourceQuotaTable is kube-apiserver's quota table: REQUEST and LIMIT
// as used/hard per resource, from the status the quota controller keeps.
func resourceQuotaTable(r *Resource) {
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			ageCol,
			col("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
			col("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			q := obj.(*corev1.ResourceQuota)
			names := make([]string, 0, len(q.Status.Hard))
			for n := range q.Status.Hard {
				names = append(names, string(n))
			}
			sort.Strings(names)
			var req, lim []string
			for _, n := range names {
				used, hard := q.Status.Used[corev1.ResourceName(n)], q.Status.Hard[corev1.ResourceName(n)]
				cell := fmt.Sprintf("%s: %s/%s", n, used.String(), hard.String())
				if strings.HasPrefix(n, "limits.") {
					lim = append(lim, cell)
				} else {
					req = append(req, cell)
				}
			}
			return []interface{}{q.Name, age(q.CreationTimestamp), strings.Join(req, ", "), strings.Join(lim, ", ")}, nil
		},
	}
}
