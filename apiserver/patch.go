package apiserver

import (
	"encoding/json"
	"errors"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// patch applies a JSON, merge or strategic-merge patch (or a server-side
// apply) to the stored object and stores it through the update path,
// retrying on write conflicts like kube-apiserver.
func (s *Server) patch(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	res := info.res
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if isApply(r) {
		return s.apply(w, r, info, body)
	}
	pt := types.PatchType(contentType(r))
	if res.Custom != nil && pt != types.JSONPatchType && pt != types.MergePatchType {
		return errUnknownCustomPatch
	}
	dups, err := patchDuplicates(r, pt, body)
	if err != nil {
		return err
	}
	for attempt := 0; attempt < 5; attempt++ {
		cur, _, err := s.getObject(res, info.namespace, info.name)
		if err != nil {
			return err
		}
		curJSON, err := json.Marshal(cur)
		if err != nil {
			return err
		}
		patched, err := applyPatch(pt, curJSON, body, res.New())
		if err != nil {
			return err
		}
		obj := res.New()
		if err := s.decodePatched(w, r, res.GroupVersionKind(), patched, obj, dups); err != nil {
			return err
		}
		if err := s.pruneCustom(w, r, res, obj); err != nil {
			return err
		}
		m, _ := meta.Accessor(obj)
		if m.GetResourceVersion() == "" {
			// A patch without a resourceVersion applies to what it read.
			cm, _ := meta.Accessor(cur)
			m.SetResourceVersion(cm.GetResourceVersion())
		}
		updated, code, err := s.updateObject(r, res, info, obj)
		if apierrors.IsConflict(err) && !patchHasRV(body) {
			continue
		}
		if err != nil {
			return err
		}
		s.respond(w, r, res, code, updated)
		return nil
	}
	return apierrors.NewConflict(res.GroupVersionResource().GroupResource(), info.name, errors.New(conflictMsg))
}

// decodePatched decodes a patched JSON document, reporting the patch's
// duplicate fields and the result's unknown fields per fieldValidation.
func (s *Server) decodePatched(w http.ResponseWriter, r *http.Request, gvk schema.GroupVersionKind, patched []byte, obj runtime.Object, dups []error) error {
	rr := r.Clone(r.Context())
	rr.Header.Set("Content-Type", mediaJSON)
	return s.decodeIntoWith(w, rr, patched, obj, gvk, dups)
}

// patchDuplicates are the duplicate fields of a merge or strategic-merge
// patch (merging keeps the last, so the patched object no longer shows
// them); kube-apiserver looks for them unless fieldValidation is Ignore.
func patchDuplicates(r *http.Request, pt types.PatchType, body []byte) ([]error, error) {
	if fieldValidation(r) == metav1.FieldValidationIgnore || (pt != types.MergePatchType && pt != types.StrategicMergePatchType) {
		return nil, nil
	}
	var m map[string]any
	dups, err := kjson.UnmarshalStrict(body, &m, kjson.DisallowDuplicateFields)
	if err != nil {
		return nil, badRequest("error decoding patch: %v", err)
	}
	return dups, nil
}

// patchHasRV reports whether the patch itself pins a resourceVersion, in
// which case a conflict is the caller's to handle.
func patchHasRV(body []byte) bool {
	var m struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if json.Unmarshal(body, &m) != nil {
		if yaml.Unmarshal(body, &m) != nil {
			return false
		}
	}
	return m.Metadata.ResourceVersion != ""
}

// errUnknownPatch answers a PATCH with an unsupported content type.
var errUnknownPatch = apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "PATCH", schema.GroupResource{}, "",
	"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json", 0, false)

// errUnknownCustomPatch: custom resources have no strategic merge patch.
var errUnknownCustomPatch = apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "PATCH", schema.GroupResource{}, "",
	"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml", 0, false)

// applyPatch applies a JSON, merge or strategic-merge patch to the JSON
// document cur; dataStruct is the Go type that carries the strategic-merge
// metadata.
func applyPatch(pt types.PatchType, cur, body []byte, dataStruct runtime.Object) ([]byte, error) {
	switch pt {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(body)
		if err != nil {
			return nil, badRequest("%v", err)
		}
		out, err := p.Apply(cur)
		if err != nil {
			return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "PATCH", schema.GroupResource{}, "", err.Error(), 0, false)
		}
		return out, nil
	case types.MergePatchType:
		out, err := jsonpatch.MergePatch(cur, body)
		if err != nil {
			return nil, badRequest("%v", err)
		}
		return out, nil
	case types.StrategicMergePatchType:
		out, err := strategicpatch.StrategicMergePatch(cur, body, dataStruct)
		if err != nil {
			return nil, badRequest("%v", err)
		}
		return out, nil
	}
	return nil, errUnknownPatch
}

// isApply says whether r is a server-side apply patch.
func isApply(r *http.Request) bool {
	pt := types.PatchType(contentType(r))
	return r.Method == http.MethodPatch && (pt == types.ApplyYAMLPatchType || pt == types.ApplyCBORPatchType)
}
