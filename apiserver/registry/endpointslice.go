package registry

import (
	"fmt"
	"strconv"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func endpointSliceBehaviour(r *Resource) {
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("AddressType", "string", discoveryv1.EndpointSlice{}.SwaggerDoc()["addressType"]),
			col("Ports", "string", discoveryv1.EndpointSlice{}.SwaggerDoc()["ports"]),
			col("Endpoints", "string", discoveryv1.EndpointSlice{}.SwaggerDoc()["endpoints"]),
			ageCol,
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			s := obj.(*discoveryv1.EndpointSlice)
			var ports, addrs []string
			for _, p := range s.Ports {
				n := "*"
				switch {
				case p.Port != nil:
					n = strconv.Itoa(int(*p.Port))
				case p.Name != nil:
					n = *p.Name
				}
				ports = append(ports, n)
			}
			for _, e := range s.Endpoints {
				addrs = append(addrs, e.Addresses...)
			}
			return []interface{}{s.Name, string(s.AddressType), firstThree(ports), firstThree(addrs), age(s.CreationTimestamp)}, nil
		},
	}
}

// firstThree is upstream's listWithMoreString over at most three items.
func firstThree(list []string) string {
	if len(list) == 0 {
		return "<unset>"
	}
	if len(list) <= 3 {
		return strings.Join(list, ",")
	}
	return fmt.Sprintf("%s + %d more...", strings.Join(list[:3], ","), len(list)-3)
}
