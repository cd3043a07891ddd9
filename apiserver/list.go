package apiserver

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	listvalidation "k8s.io/apimachinery/pkg/apis/meta/internalversion/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

// listOptions decodes a list's or watch's query and checks it as
// kube-apiserver does (resourceVersionMatch only with a resourceVersion,
// never with continue; sendInitialEvents only on watches, with
// NotOlderThan): 422 Invalid ListOptions otherwise.
func (s *Server) listOptions(r *http.Request, watch bool) (*metav1.ListOptions, error) {
	opts := &metav1.ListOptions{}
	if err := s.params.DecodeParameters(r.URL.Query(), schemaCoreV1, opts); err != nil {
		return nil, badRequest("%v", err)
	}
	errs := listvalidation.ValidateListOptions(&metainternalversion.ListOptions{
		ResourceVersion: opts.ResourceVersion, ResourceVersionMatch: opts.ResourceVersionMatch,
		Continue: opts.Continue, SendInitialEvents: opts.SendInitialEvents, Watch: watch,
	}, true)
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: "ListOptions"}, "", errs)
	}
	return opts, nil
}

// listPage is what a list's ListMeta says: the revision its items are
// at, the continue token, and how many items follow this page (set, like
// kube-apiserver, only when no selector filters them).
type listPage struct {
	rev       int64
	cont      string
	remaining *int64
}

// listRevision is the revision a list is served at (0: the current one)
// and the oldest revision it may be at, from resourceVersion and
// resourceVersionMatch: Exact N is the list as of N, NotOlderThan N (and
// N without a match) is the current list, provided the store has reached N.
func listRevision(opts *metav1.ListOptions) (at, atLeast int64, err error) {
	if opts.ResourceVersion == "" || opts.ResourceVersion == "0" {
		return 0, 0, nil
	}
	rv, err := strconv.ParseInt(opts.ResourceVersion, 10, 64)
	if err != nil || rv < 0 {
		return 0, 0, badRequest("invalid resource version %q", opts.ResourceVersion)
	}
	if opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact {
		return rv, rv, nil
	}
	return 0, rv, nil
}

// tooLargeResourceVersion is kube-apiserver's answer to a list at a
// revision the store has not reached: 504 with a Retry-After and the
// ResourceVersionTooLarge cause client-go's reflector looks for.
func tooLargeResourceVersion(rv, current int64) error {
	err := apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", rv, current), 1)
	err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge, Message: "Too large resource version"}}
	return err
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
	stored, page, err := s.listStored(res, ns, opts)
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
	return out, page.rev, page.cont, nil
}

// listStored is listObjects without decoding what no selector needs. A
// continued list is served at its first page's revision, so that the
// pages together are one consistent list and a watch from its revision
// misses nothing.
func (s *Server) listStored(res *registry.Resource, ns string, opts *metav1.ListOptions) ([]storedObject, listPage, error) {
	sel, err := parseSelector(res, opts)
	if err != nil {
		return nil, listPage{}, err
	}
	prefix := keyPrefix(res, ns)
	start := ""
	at, atLeast, err := listRevision(opts)
	if err != nil {
		return nil, listPage{}, err
	}
	if opts.Continue != "" {
		t, err := decodeContinue(opts.Continue)
		if err != nil {
			return nil, listPage{}, err
		}
		start, at = t.Start, t.Rev
	}
	var kvs []store.KV
	var rev int64
	if at > 0 {
		kvs, _, err = s.store.ListAt(prefix, at, store.ListOptions{StartKey: start})
		rev = at
	} else {
		kvs, rev, _, err = s.store.List(prefix, store.ListOptions{StartKey: start})
		if err == nil && atLeast > rev {
			err = fmt.Errorf("list at revision %d (current %d): %w", atLeast, rev, store.ErrFutureRev)
		}
	}
	switch {
	case errors.Is(err, store.ErrCompacted) && opts.Continue != "":
		return nil, listPage{}, apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
	case errors.Is(err, store.ErrCompacted):
		return nil, listPage{}, apierrors.NewResourceExpired("The resourceVersion for the provided list is too old.")
	case errors.Is(err, store.ErrFutureRev):
		return nil, listPage{}, tooLargeResourceVersion(max(at, atLeast), s.store.Rev())
	case err != nil:
		return nil, listPage{}, err
	}
	var out []storedObject
	for i, kv := range kvs {
		if opts.Limit > 0 && int64(len(out)) == opts.Limit {
			page := listPage{rev: rev, cont: encodeContinue(continueToken{Rev: rev, Start: kvs[i].Key})}
			if sel.empty() {
				n := int64(len(kvs) - i)
				page.remaining = &n
			}
			return out, page, nil
		}
		if sel.empty() {
			out = append(out, storedObject{kv: kv})
			continue
		}
		obj, err := decodeStored(res, kv)
		if err != nil {
			return nil, listPage{}, err
		}
		if sel.matches(res, obj) {
			out = append(out, storedObject{kv: kv, obj: obj})
		}
	}
	return out, listPage{rev: rev}, nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	res := info.res
	opts, err := s.listOptions(r, false)
	if err != nil {
		return err
	}
	stored, page, err := s.listStored(res, info.namespace, opts)
	if err != nil {
		return err
	}
	a, _ := negotiate(r)
	if a.as == "" && res.Custom == nil && res.NewList != nil {
		switch {
		case a.mediaType == mediaJSON && r.URL.Query().Get("pretty") != "true":
			return s.writeJSONList(w, res, stored, page)
		case a.mediaType == mediaProtobuf:
			if done, err := s.writeProtobufList(w, res, stored, page); done || err != nil {
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
		t.ResourceVersion, t.Continue, t.RemainingItemCount = strconv.FormatInt(page.rev, 10), page.cont, page.remaining
		s.writeObject(w, r, http.StatusOK, t, metav1.SchemeGroupVersion)
		return nil
	case "PartialObjectMetadataList":
		l := &metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadataList"}}
		l.ResourceVersion, l.Continue, l.RemainingItemCount = strconv.FormatInt(page.rev, 10), page.cont, page.remaining
		for _, o := range objs {
			l.Items = append(l.Items, *partialMetadata(o))
		}
		s.writeObject(w, r, http.StatusOK, l, metav1.SchemeGroupVersion)
		return nil
	}
	if res.NewList == nil {
		return apierrors.NewMethodNotSupported(res.GroupVersionResource().GroupResource(), "list")
	}
	list, err := s.typedList(res, objs, page)
	if err != nil {
		return err
	}
	s.writeObject(w, r, http.StatusOK, list, res.GroupVersion)
	return nil
}

// typedList is the kind's List object with objs as its items.
func (s *Server) typedList(res *registry.Resource, objs []runtime.Object, page listPage) (runtime.Object, error) {
	list := res.NewList()
	if err := meta.SetList(list, objs); err != nil {
		return nil, err
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		return nil, err
	}
	lm.SetResourceVersion(strconv.FormatInt(page.rev, 10))
	lm.SetContinue(page.cont)
	lm.SetRemainingItemCount(page.remaining)
	return list, nil
}

// writeJSONList writes a typed list as JSON from its items' cached
// encodings: the same bytes writeObject would write for typedList (the
// test compares them), without decoding or encoding unchanged items.
func (s *Server) writeJSONList(w http.ResponseWriter, res *registry.Resource, stored []storedObject, page listPage) error {
	info, _ := s.serializerFor(mediaJSON)
	enc := s.codecs.EncoderForVersion(info.Serializer, res.GroupVersion)
	// The envelope: the list with no items, split where they go.
	head, err := s.typedList(res, nil, page)
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
	one, err := s.typedList(res, []runtime.Object{obj}, listPage{})
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
func (s *Server) writeProtobufList(w http.ResponseWriter, res *registry.Resource, stored []storedObject, page listPage) (bool, error) {
	head, err := s.typedList(res, nil, page)
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
