package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/nanokube/nanokube/apiserver/registry"
)

func isUnstructured(obj runtime.Object) bool {
	switch obj.(type) {
	case *unstructured.Unstructured, *unstructured.UnstructuredList:
		return true
	}
	return false
}

// decodeUnstructured decodes a custom resource body (JSON or YAML; custom
// resources have no protobuf form). Duplicate fields and unknown metadata
// fields are reported per fieldValidation; metadata is coerced through
// ObjectMeta so it has the built-in types.
func (s *Server) decodeUnstructured(w http.ResponseWriter, r *http.Request, mt string, body []byte, into *unstructured.Unstructured, gvk schema.GroupVersionKind, earlier []error) error {
	var yamlErrs []error
	switch mt {
	case mediaJSON:
	case mediaYAML:
		js, err := yaml.YAMLToJSON(body)
		if err != nil {
			return badRequest("error converting YAML to JSON: %v", err)
		}
		// YAMLToJSON keeps the last of duplicate keys; the strict
		// conversion names them, as kube-apiserver's YAML decoder does.
		if fieldValidation(r) != metav1.FieldValidationIgnore {
			if _, err := yaml.YAMLToJSONStrict(body); err != nil {
				yamlErrs = append(yamlErrs, err)
			}
		}
		body = js
	default:
		return apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, r.Method, schema.GroupResource{}, "",
			fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s, %s", mediaJSON, mediaYAML), 0, false)
	}
	var obj map[string]any
	strictErrs, err := kjson.UnmarshalStrict(body, &obj)
	if err != nil {
		return badRequest("%v", err)
	}
	strictErrs = append(append(append([]error(nil), earlier...), yamlErrs...), strictErrs...)
	if obj == nil {
		return badRequest("Object 'Kind' is missing in '%s'", body)
	}
	u := &unstructured.Unstructured{Object: obj}
	if u.GetAPIVersion() == "" {
		u.SetAPIVersion(gvk.GroupVersion().String())
	}
	if u.GetKind() == "" {
		u.SetKind(gvk.Kind)
	}
	if got := u.GroupVersionKind(); got != gvk {
		return badRequest("the API version in the data (%s) does not match the expected API version (%s)", got.GroupVersion(), gvk.GroupVersion())
	}
	if md, ok := obj["metadata"]; ok && md != nil {
		raw, err := json.Marshal(md)
		if err != nil {
			return badRequest("%v", err)
		}
		var om metav1.ObjectMeta
		metaErrs, err := kjson.UnmarshalStrict(raw, &om, kjson.DisallowUnknownFields)
		if err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("metadata: %v", err))
		}
		for _, e := range metaErrs {
			strictErrs = append(strictErrs, fmt.Errorf("metadata.%s", strings.TrimPrefix(e.Error(), "unknown field ")))
		}
		coerced, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&om)
		if err != nil {
			return badRequest("metadata: %v", err)
		}
		obj["metadata"] = coerced
	}
	if err := s.reportStrict(w, r, strictErrs); err != nil {
		return err
	}
	into.Object = obj
	return nil
}

// reportStrict fails (Strict) or warns (Warn) about unknown and duplicate fields.
func (s *Server) reportStrict(w http.ResponseWriter, r *http.Request, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	switch fieldValidation(r) {
	case metav1.FieldValidationStrict:
		return badRequest("%v", runtime.NewStrictDecodingError(errs))
	case metav1.FieldValidationWarn:
		for _, e := range errs {
			addWarning(w, e)
		}
	}
	return nil
}

// pruneCustom drops the fields a custom resource's schema does not know,
// reporting them per fieldValidation like kube-apiserver.
func (s *Server) pruneCustom(w http.ResponseWriter, r *http.Request, res *registry.Resource, obj runtime.Object) error {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok || res.Custom == nil || res.Custom.Prune == nil {
		return nil
	}
	var errs []error
	for _, p := range res.Custom.Prune(u.Object) {
		errs = append(errs, fmt.Errorf("unknown field %q", p))
	}
	return s.reportStrict(w, r, errs)
}
