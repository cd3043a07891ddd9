package apiserver

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
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

// storedObject is one listed object: its stored value and, when it was
// decoded (to match a selector), its decoded form.
type storedObject struct {
	kv  store.KV
	obj runtime.Object
}

func (o *storedObject) decoded(res *registry.Resource) (runtime.Object, error) {
	if o.obj == nil {
		obj, err := decodeStored(res, o.kv)
		if err != nil {
			return nil, err
		}
		o.obj = obj
	}
	return o.obj, nil
}

// listObjects returns the matching objects, at most limit (0 = all), the
// list revision and the continue token for the next page.
func (s *Server) listObjects(res *registry.Resource, ns string, opts *metav1.ListOptions) ([]runtime.Object, int64, string, error) {
	stored, rev, cont, err := s.listStored(res, ns, opts)
	if err != nil {
		return nil, 0, "", err
	}
	out := make([]runtime.Object, 0, len(stored))
	for i := range stored {
		obj, err := stored[i].decoded(res)
		if err != nil {
			return nil, 0, "", err
		}
		out = append(out, obj)
	}
	return out, rev, cont, nil
}

// listStored is listObjects without decoding what no selector needs.
func (s *Server) listStored(res *registry.Resource, ns string, opts *metav1.ListOptions) ([]storedObject, int64, string, error) {
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
	var out []storedObject
	for i, kv := range kvs {
		if opts.Limit > 0 && int64(len(out)) == opts.Limit {
			return out, rev, encodeContinue(continueToken{Rev: rev, Start: kvs[i].Key}), nil
		}
		if sel.empty() {
			out = append(out, storedObject{kv: kv})
			continue
		}
		obj, err := decodeStored(res, kv)
		if err != nil {
			return nil, 0, "", err
		}
		if sel.matches(res, obj) {
			out = append(out, storedObject{kv: kv, obj: obj})
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
	stored, rev, cont, err := s.listStored(res, info.namespace, opts)
	if err != nil {
		return err
	}
	a, _ := negotiate(r)
	if a.as == "" && res.Custom == nil && res.NewList != nil {
		switch {
		case a.mediaType == mediaJSON && r.URL.Query().Get("pretty") != "true":
			return s.writeJSONList(w, res, stored, rev, cont)
		case a.mediaType == mediaProtobuf:
			if done, err := s.writeProtobufList(w, res, stored, rev, cont); done || err != nil {
				return err
			}
		}
	}
	objs := make([]runtime.Object, 0, len(stored))
	for i := range stored {
		obj, err := stored[i].decoded(res)
		if err != nil {
			return err
		}
		objs = append(objs, obj)
	}
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
	list, err := s.typedList(res, objs, rev, cont)
	if err != nil {
		return err
	}
	s.writeObject(w, r, http.StatusOK, list, res.GroupVersion)
	return nil
}

// typedList is the kind's List object with objs as its items.
func (s *Server) typedList(res *registry.Resource, objs []runtime.Object, rev int64, cont string) (runtime.Object, error) {
	list := res.NewList()
	if err := meta.SetList(list, objs); err != nil {
		return nil, err
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		return nil, err
	}
	lm.SetResourceVersion(strconv.FormatInt(rev, 10))
	lm.SetContinue(cont)
	return list, nil
}

// writeJSONList writes a typed list as JSON from its items' cached
// encodings: the same bytes writeObject would write for typedList (the
// test compares them), without decoding or encoding unchanged items.
func (s *Server) writeJSONList(w http.ResponseWriter, res *registry.Resource, stored []storedObject, rev int64, cont string) error {
	info, _ := s.serializerFor(mediaJSON)
	enc := s.codecs.EncoderForVersion(info.Serializer, res.GroupVersion)
	// The envelope: the list with no items, split where they go.
	head, err := s.typedList(res, nil, rev, cont)
	if err != nil {
		return err
	}
	env, err := runtime.Encode(enc, head)
	if err != nil {
		return err
	}
	env = bytes.TrimRight(env, "\n")
	const noItems = `,"items":[]}`
	if !bytes.HasSuffix(env, []byte(noItems)) {
		return fmt.Errorf("encode %s list: unexpected envelope %q", res.Kind, env)
	}
	body := make([]byte, 0, len(env)+len(stored)*1024)
	body = append(body, env[:len(env)-len(noItems)]...)
	body = append(body, `,"items":[`...)
	for i := range stored {
		o := &stored[i]
		raw, err := s.items.get(encodeKey{res: res, key: o.kv.Key, rev: o.kv.ModRev, form: formJSONItem}, func() ([]byte, error) {
			return s.encodeListItem(res, o, enc)
		})
		if err != nil {
			return err
		}
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, raw...)
	}
	body = append(body, "]}\n"...)
	w.Header().Set("Content-Type", mediaJSON)
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	return nil
}

// encodeListItem is an object's encoding inside its typed list: the list
// of one item, cut down to the item.
func (s *Server) encodeListItem(res *registry.Resource, o *storedObject, enc runtime.Encoder) ([]byte, error) {
	obj, err := o.decoded(res)
	if err != nil {
		return nil, err
	}
	one, err := s.typedList(res, []runtime.Object{obj}, 0, "")
	if err != nil {
		return nil, err
	}
	raw, err := runtime.Encode(enc, one)
	if err != nil {
		return nil, err
	}
	var l struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(raw, &l); err != nil || len(l.Items) != 1 {
		return nil, fmt.Errorf("encode %s %s as a list item: %v", res.Kind, o.kv.Key, err)
	}
	return l.Items[0], nil
}

// protobufMarshaler is what the generated types of k8s.io/api implement.
type protobufMarshaler interface{ Marshal() ([]byte, error) }

// writeProtobufList writes a typed list in protobuf from its items' cached
// encodings (false: the kind has no protobuf form, nothing written): what the protobuf serializer writes for typedList (the
// "k8s\x00" prefix, then a runtime.Unknown whose raw bytes are the list
// message: its ListMeta as field 1, each item as a field 2).
func (s *Server) writeProtobufList(w http.ResponseWriter, res *registry.Resource, stored []storedObject, rev int64, cont string) (bool, error) {
	head, err := s.typedList(res, nil, rev, cont)
	if err != nil {
		return false, err
	}
	pm, ok := head.(protobufMarshaler)
	if !ok {
		return false, nil // the encoder's path says what it says about it
	}
	kinds, _, err := s.scheme.ObjectKinds(head)
	if err != nil {
		return false, fmt.Errorf("encode %s list: %w", res.Kind, err)
	}
	msg, err := pm.Marshal()
	if err != nil {
		return false, err
	}
	for i := range stored {
		o := &stored[i]
		raw, err := s.items.get(encodeKey{res: res, key: o.kv.Key, rev: o.kv.ModRev, form: formProtobufItem}, func() ([]byte, error) {
			obj, err := o.decoded(res)
			if err != nil {
				return nil, err
			}
			m, ok := obj.(protobufMarshaler)
			if !ok {
				return nil, fmt.Errorf("encode %s %s: %T has no protobuf form", res.Kind, o.kv.Key, obj)
			}
			return m.Marshal()
		})
		if err != nil {
			return false, err
		}
		msg = append(msg, 0x12) // field 2 (items), length-delimited
		msg = binary.AppendUvarint(msg, uint64(len(raw)))
		msg = append(msg, raw...)
	}
	unk := runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: res.GroupVersion.String(), Kind: kinds[0].Kind}, Raw: msg}
	body, err := unk.Marshal()
	if err != nil {
		return false, err
	}
	w.Header().Set("Content-Type", mediaProtobuf)
	w.WriteHeader(http.StatusOK)
	w.Write(protobufPrefix)
	w.Write(body)
	return true, nil
}

// protobufPrefix starts every protobuf-encoded Kubernetes object.
var protobufPrefix = []byte{0x6b, 0x38, 0x73, 0x00}
