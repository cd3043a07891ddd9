package apiserver

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

func (s *Server) listOptions(r *http.Request) (*metav1.ListOptions, error) {
	opts := &metav1.ListOptions{}
	if err := s.params.DecodeParameters(r.URL.Query(), schemaCoreV1, opts); err != nil {
		return nil, badRequest("%v", err)
	}
	return opts, nil
}

// continueToken is the opaque `continue` value: where the next page starts.
type continueToken struct {
	Rev   int64  `json:"rv"`
	Start string `json:"start"`
}

func encodeContinue(t continueToken) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (continueToken, error) {
	var t continueToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil {
		return t, badRequest("continue key is not valid: %v", err)
	}
	return t, nil
}

// listObjects returns the matching objects, at most limit (0 = all), the
// list revision and the continue token for the next page.
func (s *Server) listObjects(res *registry.Resource, ns string, opts *metav1.ListOptions) ([]runtime.Object, int64, string, error) {
	sel, err := parseSelector(res, opts)
	if err != nil {
		return nil, 0, "", err
	}
	prefix := keyPrefix(res, ns)
	start := ""
	if opts.Continue != "" {
		t, err := decodeContinue(opts.Continue)
		if err != nil {
			return nil, 0, "", err
		}
		if t.Rev < s.store.CompactedRev() {
			return nil, 0, "", apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
		}
		start = t.Start
	}
	kvs, rev, _, err := s.store.List(prefix, store.ListOptions{StartKey: start})
	if err != nil {
		return nil, 0, "", err
	}
	var out []runtime.Object
	for i, kv := range kvs {
		if opts.Limit > 0 && int64(len(out)) == opts.Limit {
			return out, rev, encodeContinue(continueToken{Rev: rev, Start: kvs[i].Key}), nil
		}
		obj, err := decodeStored(res, kv)
		if err != nil {
			return nil, 0, "", err
		}
		if sel.matches(res, obj) {
			out = append(out, obj)
		}
	}
	return out, rev, "", nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	res := info.res
	opts, err := s.listOptions(r)
	if err != nil {
		return err
	}
	objs, rev, cont, err := s.listObjects(res, info.namespace, opts)
	if err != nil {
		return err
	}
	a, _ := negotiate(r)
	switch a.as {
	case "Table":
		t, err := s.toTable(res, objs, r)
		if err != nil {
			return err
		}
		t.ResourceVersion, t.Continue = strconv.FormatInt(rev, 10), cont
		s.writeObject(w, r, http.StatusOK, t, metav1.SchemeGroupVersion)
		return nil
	case "PartialObjectMetadataList":
		l := &metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadataList"}}
		l.ResourceVersion, l.Continue = strconv.FormatInt(rev, 10), cont
		for _, o := range objs {
			l.Items = append(l.Items, *partialMetadata(o))
		}
		s.writeObject(w, r, http.StatusOK, l, metav1.SchemeGroupVersion)
		return nil
	}
	if res.NewList == nil {
		return apierrors.NewMethodNotSupported(res.GroupVersionResource().GroupResource(), "list")
	}
	list := res.NewList()
	if err := meta.SetList(list, objs); err != nil {
		return err
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		return err
	}
	lm.SetResourceVersion(strconv.FormatInt(rev, 10))
	lm.SetContinue(cont)
	s.writeObject(w, r, http.StatusOK, list, res.GroupVersion)
	return nil
}
