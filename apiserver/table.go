package apiserver

import (
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/nanokube/nanokube/apiserver/registry"
)

// defaultColumns are kube-apiserver's columns for kinds without a printer.
var defaultColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
	{Name: "Created At", Type: "date", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
}

// toTable renders objects as a server-side Table like kube-apiserver:
// the kind's columns, one row per object, each row carrying the object's
// metadata (or the object, or nothing, per includeObject).
func (s *Server) toTable(res *registry.Resource, objs []runtime.Object, r *http.Request) (*metav1.Table, error) {
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"}}
	if res.Table != nil {
		t.ColumnDefinitions = res.Table.Columns
	} else {
		t.ColumnDefinitions = defaultColumns
	}
	include := metav1.IncludeMetadata
	if v := r.URL.Query().Get("includeObject"); v != "" {
		include = metav1.IncludeObjectPolicy(v)
	}
	t.Rows = make([]metav1.TableRow, 0, len(objs))
	for _, obj := range objs {
		var cells []interface{}
		if res.Table != nil {
			c, err := res.Table.Row(obj)
			if err != nil {
				return nil, err
			}
			cells = c
		} else {
			m, _ := meta.Accessor(obj)
			cells = []interface{}{m.GetName(), m.GetCreationTimestamp().UTC().Format(time.RFC3339)}
		}
		row := metav1.TableRow{Cells: cells}
		switch include {
		case metav1.IncludeObject:
			row.Object = runtime.RawExtension{Object: obj}
		case metav1.IncludeMetadata:
			row.Object = runtime.RawExtension{Object: partialMetadata(obj)}
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}
