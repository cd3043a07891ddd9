package customresource

import (
	"encoding/json"
	"strings"

	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	openapierrors "k8s.io/kube-openapi/pkg/validation/errors"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/validate"
)

// supportedFormats are the string formats CRD schemas validate (the
// others are ignored, as in kube-apiserver).
var supportedFormats = sets.New("bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac",
	"uuid", "uuid3", "uuid4", "uuid5", "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor",
	"byte", "password", "date", "duration", "datetime", "date-time", "int32", "int64", "float", "double")

// validationSchema is the kube-openapi schema the validator checks
// against: int-or-string becomes [integer, string] and unsupported
// formats are dropped.
func validationSchema(st *structuralschema.Structural) *spec.Schema {
	s := st.ToKubeOpenAPI()
	walk(s)
	return s
}

func walk(s *spec.Schema) {
	if s == nil {
		return
	}
	if v, ok := s.Extensions["x-kubernetes-int-or-string"].(bool); ok && v {
		s.Type = spec.StringOrArray{"integer", "string"}
	}
	if s.Format != "" {
		f := strings.ReplaceAll(strings.ToLower(s.Format), "-", "")
		if f == "datetime" {
			f = "date-time"
		}
		if !supportedFormats.Has(s.Format) && !supportedFormats.Has(f) {
			s.Format = ""
		}
	}
	for k, p := range s.Properties {
		walk(&p)
		s.Properties[k] = p
	}
	if s.Items != nil {
		walk(s.Items.Schema)
		for i := range s.Items.Schemas {
			walk(&s.Items.Schemas[i])
		}
	}
	if s.AdditionalProperties != nil {
		walk(s.AdditionalProperties.Schema)
	}
	for _, l := range [][]spec.Schema{s.AllOf, s.AnyOf, s.OneOf} {
		for i := range l {
			walk(&l[i])
		}
	}
	walk(s.Not)
}

// resultErrors turns the validator's result into field errors with the
// messages kube-apiserver gives.
func resultErrors(res *validate.Result) field.ErrorList {
	if res == nil || res.IsValid() {
		return nil
	}
	var errs field.ErrorList
	for _, e := range res.Errors {
		ve, ok := e.(*openapierrors.Validation)
		if !ok {
			errs = append(errs, field.Invalid(nil, "", e.Error()))
			continue
		}
		var p *field.Path
		if ve.Name != "" && ve.Name != "." {
			p = field.NewPath(strings.TrimPrefix(ve.Name, "."))
		}
		value := ve.Value
		if value == nil {
			value = ""
		}
		switch ve.Code() {
		case openapierrors.RequiredFailCode:
			errs = append(errs, field.Required(p, ""))
		case openapierrors.EnumFailCode:
			var values []string
			for _, v := range ve.Values {
				if s, ok := v.(string); ok {
					values = append(values, s)
				} else {
					b, _ := json.Marshal(v)
					values = append(values, string(b))
				}
			}
			errs = append(errs, field.NotSupported(p, ve.Value, values))
		case openapierrors.TooLongFailCode:
			limit := int64(-1)
			if i, ok := ve.Valid.(int64); ok {
				limit = i
			}
			errs = append(errs, field.TooLong(p, "", int(limit)))
		case openapierrors.MaxItemsFailCode, openapierrors.TooManyPropertiesCode:
			actual, limit := int64(-1), int64(-1)
			if i, ok := ve.Value.(int64); ok {
				actual = i
			}
			if i, ok := ve.Valid.(int64); ok {
				limit = i
			}
			errs = append(errs, field.TooMany(p, int(actual), int(limit)))
		case openapierrors.InvalidTypeCode:
			errs = append(errs, field.TypeInvalid(p, value, ve.Error()))
		default:
			errs = append(errs, field.Invalid(p, value, ve.Error()))
		}
	}
	return errs
}

// applyDefaults sets the schema's defaults where a field is missing (or
// null and not nullable), deep-copied, like kube-apiserver's structural
// defaulting.
func applyDefaults(x any, s *structuralschema.Structural) {
	if s == nil {
		return
	}
	nonNullableNull := func(v any, s *structuralschema.Structural) bool {
		return v == nil && s != nil && !s.Nullable
	}
	switch x := x.(type) {
	case map[string]any:
		for k, prop := range s.Properties {
			if prop.Default.Object == nil {
				continue
			}
			if v, found := x[k]; !found || nonNullableNull(v, &prop) {
				x[k] = runtime.DeepCopyJSONValue(prop.Default.Object)
			}
		}
		for k, v := range x {
			if prop, found := s.Properties[k]; found {
				applyDefaults(v, &prop)
			} else if s.AdditionalProperties != nil && s.AdditionalProperties.Structural != nil {
				ap := s.AdditionalProperties.Structural
				if nonNullableNull(v, ap) && ap.Default.Object != nil {
					x[k] = runtime.DeepCopyJSONValue(ap.Default.Object)
				}
				applyDefaults(x[k], ap)
			}
		}
	case []any:
		for i := range x {
			if nonNullableNull(x[i], s.Items) && s.Items.Default.Object != nil {
				x[i] = runtime.DeepCopyJSONValue(s.Items.Default.Object)
			}
			applyDefaults(x[i], s.Items)
		}
	}
}
