package customresource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metatable "k8s.io/apimachinery/pkg/api/meta/table"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/jsonpath"

	"github.com/nanokube/nanokube/apiserver/registry"
)

// ageColumn is what a version without printer columns shows besides NAME.
var ageColumn = apiextensionsv1.CustomResourceColumnDefinition{Name: "Age", Type: "date",
	Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"], JSONPath: ".metadata.creationTimestamp"}

// newTable prints the additionalPrinterColumns like kube-apiserver: NAME,
// then each column's JSONPath value typed by the column's type.
func newTable(cols []apiextensionsv1.CustomResourceColumnDefinition) (*registry.Table, error) {
	if len(cols) == 0 {
		cols = []apiextensionsv1.CustomResourceColumnDefinition{ageColumn}
	}
	defs := []metav1.TableColumnDefinition{{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]}}
	var paths []*jsonpath.JSONPath
	for _, c := range cols {
		p := jsonpath.New(c.Name)
		if err := p.Parse(fmt.Sprintf("{%s}", c.JSONPath)); err != nil {
			return nil, fmt.Errorf("printer column %q: unrecognized JSONPath %q: %w", c.Name, c.JSONPath, err)
		}
		paths = append(paths, p)
		defs = append(defs, metav1.TableColumnDefinition{Name: c.Name, Type: c.Type, Format: c.Format, Description: c.Description, Priority: c.Priority})
	}
	return &registry.Table{
		Columns: defs,
		Row: func(obj runtime.Object) ([]interface{}, error) {
			u := obj.(*unstructured.Unstructured)
			cells := []interface{}{u.GetName()}
			buf := &bytes.Buffer{}
			for i, p := range paths {
				results, err := p.FindResults(u.Object)
				if err != nil || len(results) == 0 || len(results[0]) == 0 {
					cells = append(cells, nil)
					continue
				}
				value := results[0][0].Interface()
				if cols[i].Type == "string" {
					if err := p.PrintResults(buf, []reflect.Value{reflect.ValueOf(value)}); err == nil {
						cells = append(cells, buf.String())
						buf.Reset()
					} else {
						cells = append(cells, nil)
					}
					continue
				}
				cells = append(cells, cell(cols[i].Type, value))
			}
			return cells, nil
		},
	}, nil
}

func cell(typ string, value any) any {
	switch typ {
	case "integer":
		switch v := value.(type) {
		case int64:
			return v
		case float64:
			return int64(v)
		case json.Number:
			if i, err := v.Int64(); err == nil {
				return i
			}
		}
	case "number":
		switch v := value.(type) {
		case int64:
			return float64(v)
		case float64:
			return v
		case json.Number:
			if f, err := v.Float64(); err == nil {
				return f
			}
		}
	case "boolean":
		if b, ok := value.(bool); ok {
			return b
		}
	case "date":
		if s, ok := value.(string); ok {
			var t metav1.Time
			if err := t.UnmarshalQueryParameter(s); err != nil {
				return "<invalid>"
			}
			return metatable.ConvertToHumanReadableDateType(t)
		}
	}
	return nil
}
