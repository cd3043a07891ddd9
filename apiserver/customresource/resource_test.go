package customresource

import (
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func widgetCRD() *apiextensionsv1.CustomResourceDefinition {
	schema := &apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
		"spec": {Type: "object", Default: &apiextensionsv1.JSON{Raw: []byte(`{}`)}, Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"size":  {Type: "integer", Default: &apiextensionsv1.JSON{Raw: []byte(`3`)}},
			"port":  {XIntOrString: true, AnyOf: []apiextensionsv1.JSONSchemaProps{{Type: "integer"}, {Type: "string"}}},
			"color": {Type: "string", Enum: []apiextensionsv1.JSON{{Raw: []byte(`"red"`)}, {Raw: []byte(`"blue"`)}}},
			"items": {Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{
				Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"name": {Type: "string"}, "weight": {Type: "number", Default: &apiextensionsv1.JSON{Raw: []byte(`1.5`)}}}}}},
		}},
	}}
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema:                   &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: schema},
				SelectableFields:         []apiextensionsv1.SelectableField{{JSONPath: ".spec.color"}},
				AdditionalPrinterColumns: []apiextensionsv1.CustomResourceColumnDefinition{{Name: "Size", Type: "integer", JSONPath: ".spec.size"}, {Name: "Port", Type: "string", JSONPath: ".spec.port", Priority: 1}}},
				{Name: "v0", Served: false, Storage: false, Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: schema}}}},
	}
}

func TestDefaultsPruneValidateTable(t *testing.T) {
	rs, err := Resources(widgetCRD())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].GroupVersion.Version != "v1" || rs[0].Custom.StorageVersion != "v1" {
		t.Fatalf("served versions = %d", len(rs))
	}
	r := rs[0]
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w"}, "unknown": true,
		"spec": map[string]any{"port": "http", "color": "red", "items": []any{map[string]any{"name": "a", "extra": 1}}}}}
	pruned := r.Custom.Prune(u.Object)
	if strings.Join(pruned, ",") != "spec.items[0].extra,unknown" {
		t.Errorf("pruned = %v", pruned)
	}
	r.Default(u)
	if size, _, _ := unstructured.NestedInt64(u.Object, "spec", "size"); size != 3 {
		t.Errorf("defaulted size = %d", size)
	}
	items, _, _ := unstructured.NestedSlice(u.Object, "spec", "items")
	if w := items[0].(map[string]any)["weight"]; w != 1.5 {
		t.Errorf("defaulted item weight = %v", w)
	}
	if errs := r.Validate(u); len(errs) != 0 {
		t.Errorf("valid widget: %v", errs)
	}
	if got := r.FieldSet(u)["spec.color"]; got != "red" {
		t.Errorf("selectable field spec.color = %q", got)
	}
	row, err := r.Table.Row(u)
	if err != nil {
		t.Fatal(err)
	}
	if row[0] != "w" || row[1] != int64(3) || row[2] != "http" || r.Table.Columns[2].Priority != 1 {
		t.Errorf("row = %v", row)
	}
	unstructured.SetNestedField(u.Object, "green", "spec", "color")
	unstructured.SetNestedField(u.Object, true, "spec", "port")
	errs := r.Validate(u)
	msgs := errs.ToAggregate().Error()
	if !strings.Contains(msgs, `spec.color: Unsupported value: "green": supported values: "red", "blue"`) || !strings.Contains(msgs, "spec.port") {
		t.Errorf("invalid widget errors = %s", msgs)
	}
	// A defaulted empty spec comes from the schema's object default.
	empty := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": map[string]any{"name": "e"}}}
	r.Default(empty)
	if size, _, _ := unstructured.NestedInt64(empty.Object, "spec", "size"); size != 3 {
		t.Errorf("nested default under a defaulted object = %d", size)
	}
}
