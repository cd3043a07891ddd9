package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

// bookmarkEvery is how often an idle watch that asked for bookmarks gets one.
const bookmarkEvery = time.Minute

// watchStream writes watch events in the client's format.
type watchStream struct {
	s        *Server
	w        http.ResponseWriter
	flusher  http.Flusher
	res      *registry.Resource
	enc      streaming.Encoder
	objEnc   runtime.Encoder
	table    bool
	columns  bool // column definitions sent (Table watches)
	r        *http.Request
	lastRev  int64
	sentAny  bool
	metaOnly bool
	// cached: the events carry the objects as stored (no Table, no
	// metadata-only view), so their encodings come from the server's
	// encode cache in this form; json: the stream is JSON, its events are
	// written without re-encoding the object.
	cached bool
	form   encodeForm
	json   bool
}

// sendStored sends the object stored in kv; obj is its decoded form when
// the caller has it (nil: decoded only when the encode cache misses).
func (ws *watchStream) sendStored(typ watch.EventType, kv store.KV, obj runtime.Object) error {
	if !ws.cached {
		if obj == nil {
			var err error
			if obj, err = decodeStored(ws.res, kv); err != nil {
				return err
			}
		}
		return ws.send(typ, obj)
	}
	raw, err := ws.s.events.get(encodeKey{res: ws.res, key: kv.Key, rev: kv.ModRev, form: ws.form}, func() ([]byte, error) {
		if obj == nil {
			var err error
			if obj, err = decodeStored(ws.res, kv); err != nil {
				return nil, err
			}
		}
		return runtime.Encode(ws.objEnc, obj)
	})
	if err != nil {
		return err
	}
	return ws.write(typ, raw)
}

// write frames one event around an encoded object.
func (ws *watchStream) write(typ watch.EventType, raw []byte) error {
	if ws.json {
		// What the JSON stream encoder writes for a WatchEvent, without
		// scanning the object's bytes again.
		if _, err := ws.w.Write(jsonEventFrame(typ, raw)); err != nil {
			return err
		}
	} else if err := ws.enc.Encode(&metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: raw}}); err != nil {
		return err
	}
	ws.flusher.Flush()
	return nil
}

// jsonEventFrame is one line of a JSON watch stream: {"type":…,"object":…}.
func jsonEventFrame(typ watch.EventType, raw []byte) []byte {
	raw = bytes.TrimRight(raw, "\n")
	b := make([]byte, 0, len(raw)+len(typ)+24)
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","object":`...)
	b = append(b, raw...)
	return append(b, "}\n"...)
}

func (ws *watchStream) send(typ watch.EventType, obj runtime.Object) error {
	var out runtime.Object = obj
	switch {
	case ws.table && typ != watch.Bookmark:
		t, err := ws.s.toTable(ws.res, []runtime.Object{obj}, ws.r)
		if err != nil {
			return err
		}
		if ws.columns {
			t.ColumnDefinitions = nil
		}
		ws.columns = true
		out = t
	case ws.metaOnly && typ != watch.Bookmark:
		out = partialMetadata(obj)
	}
	raw, err := runtime.Encode(ws.objEnc, out)
	if err != nil {
		return err
	}
	return ws.write(typ, raw)
}

func (s *Server) watch(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	res := info.res
	opts, err := s.listOptions(r, true)
	if err != nil {
		return err
	}
	sel, err := parseSelector(res, opts)
	if err != nil {
		return err
	}
	if info.name != "" {
		sel.fields = andName(sel.fields, info.name)
	}
	a, _ := negotiate(r)
	mt := a.mediaType
	if a.as == "Table" || (res.Custom != nil && a.as == "" && mt == mediaProtobuf) {
		mt = mediaJSON
	}
	info2, ok := s.serializerFor(mt)
	if !ok || info2.StreamSerializer == nil {
		info2, _ = s.serializerFor(mediaJSON)
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		return errors.New("streaming not supported by this connection")
	}
	var objEnc runtime.Encoder
	switch a.as {
	case "Table", "PartialObjectMetadata":
		objEnc = s.codecs.EncoderForVersion(info2.Serializer, metav1.SchemeGroupVersion)
	default:
		objEnc = s.codecs.EncoderForVersion(info2.Serializer, res.GroupVersion)
	}

	// Where the watch starts, and which objects it first reports as ADDED.
	var initial []storedObject
	var from int64
	rv := opts.ResourceVersion
	sendInitial := opts.SendInitialEvents != nil && *opts.SendInitialEvents
	if rv == "" || rv == "0" || sendInitial {
		objs, page, err := s.listStored(res, info.namespace, &metav1.ListOptions{LabelSelector: opts.LabelSelector, FieldSelector: andNameString(opts.FieldSelector, info.name)})
		if err != nil {
			return err
		}
		initial, from = objs, page.rev
		if rv != "" && rv != "0" && !sendInitial {
			initial = nil
		}
	} else {
		from, err = strconv.ParseInt(rv, 10, 64)
		if err != nil {
			return badRequest("invalid resourceVersion %q", rv)
		}
		if err := s.waitForRev(r.Context(), from); err != nil {
			return err
		}
	}
	watcher, err := s.store.Watch(r.Context(), keyPrefix(res, info.namespace), from)
	if errors.Is(err, store.ErrCompacted) {
		return apierrors.NewResourceExpired("too old resource version: " + rv + " (" + strconv.FormatInt(s.store.CompactedRev(), 10) + ")")
	}
	if err != nil {
		return err
	}
	defer watcher.Stop()

	ct := info2.MediaType
	if info2.MediaType == mediaProtobuf {
		ct += ";stream=watch"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	ws := &watchStream{
		s: s, w: w, flusher: flusher, res: res, r: r,
		enc:      streaming.NewEncoder(info2.StreamSerializer.Framer.NewFrameWriter(w), s.codecs.EncoderForVersion(info2.StreamSerializer.Serializer, schemaCoreV1)),
		objEnc:   objEnc,
		table:    a.as == "Table",
		metaOnly: a.as == "PartialObjectMetadata",
		lastRev:  from,
		cached:   a.as == "",
		json:     info2.MediaType == mediaJSON,
	}
	if info2.MediaType == mediaProtobuf {
		ws.form = formProtobuf
	}
	for _, o := range initial {
		if err := ws.sendStored(watch.Added, o.kv, o.obj); err != nil {
			return nil
		}
	}
	if sendInitial && opts.AllowWatchBookmarks {
		if err := ws.bookmark(true); err != nil {
			return nil
		}
	}

	timeout := 30*time.Minute + time.Duration(rand.IntN(1800))*time.Second
	if opts.TimeoutSeconds != nil && *opts.TimeoutSeconds > 0 {
		timeout = time.Duration(*opts.TimeoutSeconds) * time.Second
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var bookmarks <-chan time.Time
	if opts.AllowWatchBookmarks {
		t := time.NewTicker(bookmarkEvery)
		defer t.Stop()
		bookmarks = t.C
	}
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-deadline.C:
			return nil
		case <-bookmarks:
			if err := ws.bookmark(false); err != nil {
				return nil
			}
		case ev, ok := <-watcher.Events():
			if !ok {
				if err := watcher.Err(); err != nil {
					st := toStatus(apierrors.NewResourceExpired(err.Error()))
					raw, _ := runtime.Encode(s.codecs.EncoderForVersion(info2.Serializer, schemaCoreV1), st)
					ws.enc.Encode(&metav1.WatchEvent{Type: string(watch.Error), Object: runtime.RawExtension{Raw: raw}})
					flusher.Flush()
				}
				return nil
			}
			if err := ws.event(ev, sel); err != nil {
				return nil
			}
		}
	}
}

// event translates one store event, honouring the selector: an object
// that starts matching is ADDED, one that stops matching is DELETED.
func (ws *watchStream) event(ev store.Event, sel selector) error {
	ws.lastRev = ev.KV.ModRev
	if ws.cached && sel.empty() {
		typ := watch.Added
		switch {
		case ev.Type == store.Delete:
			typ = watch.Deleted
		case ev.PrevKV != nil:
			typ = watch.Modified
		}
		return ws.sendStored(typ, ev.KV, nil)
	}
	cur, err := decodeStored(ws.res, ev.KV)
	if err != nil {
		return err
	}
	curMatch := sel.matches(ws.res, cur)
	prevMatch := false
	if ev.PrevKV != nil {
		prev, err := decodeStored(ws.res, *ev.PrevKV)
		if err != nil {
			return err
		}
		prevMatch = sel.matches(ws.res, prev)
	}
	switch {
	case ev.Type == store.Delete:
		if prevMatch || curMatch {
			return ws.sendStored(watch.Deleted, ev.KV, cur)
		}
	case curMatch && ev.PrevKV != nil && prevMatch:
		return ws.sendStored(watch.Modified, ev.KV, cur)
	case curMatch:
		return ws.sendStored(watch.Added, ev.KV, cur)
	case prevMatch:
		return ws.sendStored(watch.Deleted, ev.KV, cur)
	}
	return nil
}

// bookmark sends a BOOKMARK with only the kind and the revision.
func (ws *watchStream) bookmark(initialEnd bool) error {
	var obj runtime.Object = ws.res.New()
	obj.GetObjectKind().SetGroupVersionKind(ws.res.GroupVersionKind())
	if ws.metaOnly || ws.table {
		obj = &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}}
	}
	m, _ := meta.Accessor(obj)
	m.SetResourceVersion(strconv.FormatInt(ws.lastRev, 10))
	if initialEnd {
		m.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	}
	raw, err := runtime.Encode(ws.objEnc, obj)
	if err != nil {
		return err
	}
	return ws.write(watch.Bookmark, raw)
}

func andName(sel fields.Selector, name string) fields.Selector {
	return fields.AndSelectors(sel, fields.OneTermEqualSelector("metadata.name", name))
}

// andNameString adds metadata.name=name to a field selector string (name
// "": the selector as given).
func andNameString(sel, name string) string {
	if name == "" {
		return sel
	}
	term := fields.OneTermEqualSelector("metadata.name", name).String()
	if sel == "" {
		return term
	}
	return sel + "," + term
}

// defaultRevisionWait is how long kube-apiserver's watch cache waits for a
// resourceVersion it has not seen yet before giving up.
const defaultRevisionWait = 3 * time.Second

// waitForRev waits, up to Config.RevisionWait, for the store to reach a
// watch's resourceVersion (one from another API server, or a client ahead
// of a restarted one); then it is kube-apiserver's 504 ResourceVersionTooLarge.
func (s *Server) waitForRev(ctx context.Context, rev int64) error {
	if rev <= s.store.Rev() {
		return nil
	}
	wait := s.cfg.RevisionWait
	if wait <= 0 {
		wait = defaultRevisionWait
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	err := s.store.WaitRev(wctx, rev)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		return tooLargeResourceVersion(rev, s.store.Rev())
	}
	return fmt.Errorf("wait for revision %d: %w", rev, err)
}
