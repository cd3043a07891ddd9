package apiserver

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

const (
	mediaJSON     = "application/json"
	mediaYAML     = "application/yaml"
	mediaProtobuf = "application/vnd.kubernetes.protobuf"
	maxBodyBytes  = 3 << 20 // kube-apiserver's request size limit
)

// accept is one entry of an Accept header.
type accept struct {
	mediaType string
	as, g, v  string // Table / PartialObjectMetadata(List) conversions
}

func parseAccept(h string) []accept {
	var out []accept
	for _, part := range strings.Split(h, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		out = append(out, accept{mediaType: mt, as: params["as"], g: params["g"], v: params["v"]})
	}
	return out
}

// negotiate picks the response media type and conversion.
func negotiate(r *http.Request) (accept, bool) {
	h := r.Header.Get("Accept")
	if h == "" {
		return accept{mediaType: mediaJSON}, true
	}
	for _, a := range parseAccept(h) {
		switch a.mediaType {
		case mediaJSON, mediaYAML, mediaProtobuf:
			if a.as != "" && !(a.g == "meta.k8s.io" && a.v == "v1" && (a.as == "Table" || a.as == "PartialObjectMetadata" || a.as == "PartialObjectMetadataList")) {
				continue
			}
			return a, true
		case "*/*", "application/*":
			return accept{mediaType: mediaJSON}, true
		}
	}
	return accept{}, false
}

func (s *Server) serializerFor(mediaType string) (runtime.SerializerInfo, bool) {
	return runtime.SerializerInfoForMediaType(s.codecs.SupportedMediaTypes(), mediaType)
}

// writeObject encodes obj for the client's Accept header in group-version gv.
func (s *Server) writeObject(w http.ResponseWriter, r *http.Request, code int, obj runtime.Object, gv schema.GroupVersion) {
	a, ok := negotiate(r)
	if !ok || (a.as != "" && a.mediaType == mediaProtobuf && a.as == "Table") {
		a = accept{mediaType: mediaJSON}
	}
	info, ok := s.serializerFor(a.mediaType)
	if !ok || (info.MediaType == mediaProtobuf && isUnstructured(obj)) {
		// Custom resources have no protobuf form: JSON, like their
		// kube-apiserver handler answers.
		info, _ = s.serializerFor(mediaJSON)
	}
	if info.MediaType == mediaJSON && info.PrettySerializer != nil && r.URL.Query().Get("pretty") == "true" {
		info.Serializer = info.PrettySerializer
	}
	var enc runtime.Encoder = s.codecs.EncoderForVersion(info.Serializer, gv)
	if isUnstructured(obj) {
		enc = info.Serializer // already in the served version
	}
	body, err := runtime.Encode(enc, obj)
	if err != nil {
		http.Error(w, fmt.Sprintf("encode response: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", info.MediaType)
	w.WriteHeader(code)
	w.Write(body)
}

// writeJSON writes a discovery-style object as JSON (these types have no
// protobuf or scheme registration that matters to clients).
func (s *Server) writeJSON(w http.ResponseWriter, code int, obj any) {
	w.Header().Set("Content-Type", mediaJSON)
	s.writeRawJSON(w, code, obj)
}

func (s *Server) writeRawJSON(w http.ResponseWriter, code int, obj any) {
	b, err := json.Marshal(obj)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(code)
	w.Write(b)
}

// readBody reads a request body within the size limit.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, badRequest("read request body: %v", err)
	}
	if len(b) > maxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError("limit is 3145728")
	}
	return b, nil
}

func contentType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return mediaJSON
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	return mt
}

// decodeInto decodes body (of the request's content type) into into, with
// gvk as the default when the body names none. Unknown and duplicate fields
// are handled per fieldValidation: Strict fails, Warn adds a Warning header.
func (s *Server) decodeInto(w http.ResponseWriter, r *http.Request, body []byte, into runtime.Object, gvk schema.GroupVersionKind) error {
	return s.decodeIntoWith(w, r, body, into, gvk, nil)
}

// decodeIntoWith is decodeInto with strict decoding errors found earlier
// (a patch's duplicate fields) reported first, together with the body's,
// like kube-apiserver's patch handler.
func (s *Server) decodeIntoWith(w http.ResponseWriter, r *http.Request, body []byte, into runtime.Object, gvk schema.GroupVersionKind, earlier []error) error {
	mt := contentType(r)
	if u, ok := into.(*unstructured.Unstructured); ok {
		return s.decodeUnstructured(w, r, mt, body, u, gvk, earlier)
	}
	info, ok := runtime.SerializerInfoForMediaType(s.strict.SupportedMediaTypes(), mt)
	if !ok {
		return apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, r.Method, schema.GroupResource{}, "",
			fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s", strings.Join(supportedTypes, ", ")), 0, false)
	}
	dec := info.Serializer
	obj, got, err := dec.Decode(body, &gvk, into)
	strictErrs := earlier
	if err != nil {
		strictErr, isStrict := runtime.AsStrictDecodingError(err)
		if !isStrict {
			return badRequest("%v", err)
		}
		strictErrs = append(append([]error(nil), earlier...), strictErr.Errors()...)
		if obj == nil {
			obj = into
		}
	}
	if err := s.reportStrict(w, r, strictErrs); err != nil {
		return err
	}
	// DeleteOptions come in the version of the group they are sent to.
	if got != nil && (got.Kind != gvk.Kind || got.GroupVersion() != gvk.GroupVersion()) && got.Kind != "" && !(got.Kind == "DeleteOptions" && gvk.Kind == "DeleteOptions") {
		return badRequest("the API version in the data (%s) does not match the expected API version (%s)", got.GroupVersion(), gvk.GroupVersion())
	}
	if obj != into {
		return badRequest("decoded %T, want %T", obj, into)
	}
	return nil
}

var supportedTypes = []string{mediaJSON, mediaYAML, mediaProtobuf}

func fieldValidation(r *http.Request) string {
	v := r.URL.Query().Get("fieldValidation")
	if v == "" {
		return metav1.FieldValidationWarn
	}
	return v
}

func addWarning(w http.ResponseWriter, err error) { addWarningText(w, err.Error()) }

func addWarningText(w http.ResponseWriter, text string) {
	w.Header().Add("Warning", `299 - `+strconv.Quote(text))
}

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
