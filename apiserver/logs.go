package apiserver

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// flushWriter flushes after every write so `kubectl logs -f` streams.
type flushWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

func (fw flushWriter) Write(b []byte) (int, error) { return fw.w.Write(b) }
func (fw flushWriter) Flush()                      { fw.f.Flush() }

// serveLog answers GET pods/{name}/log through the node agent that runs
// the pod.
func (s *Server) serveLog(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	if info.verb != "get" {
		return apierrors.NewMethodNotSupported(info.res.GroupVersionResource().GroupResource(), info.verb)
	}
	obj, _, err := s.getObject(info.res, info.namespace, info.name)
	if err != nil {
		return err
	}
	pod := obj.(*corev1.Pod)
	opts, err := podLogOptions(r.URL.Query())
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		return badRequest("pod %s does not have a host assigned", pod.Name)
	}
	w.Header().Set("Content-Type", "text/plain")
	f, _ := w.(http.Flusher)
	if f == nil {
		return s.cfg.PodLogs(r.Context(), pod, opts.Container, opts, w)
	}
	return s.cfg.PodLogs(r.Context(), pod, opts.Container, opts, flushWriter{w, f})
}

// podLogOptions reads the query of a pods/log request.
func podLogOptions(q url.Values) (*corev1.PodLogOptions, error) {
	opts := &corev1.PodLogOptions{Container: q.Get("container"), Follow: q.Get("follow") == "true",
		Previous: q.Get("previous") == "true", Timestamps: q.Get("timestamps") == "true"}
	for _, f := range []struct {
		name string
		dst  **int64
	}{{"tailLines", &opts.TailLines}, {"limitBytes", &opts.LimitBytes}, {"sinceSeconds", &opts.SinceSeconds}} {
		if v := q.Get(f.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, badRequest("invalid %s %q", f.name, v)
			}
			*f.dst = &n
		}
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, badRequest("invalid sinceTime %q", v)
		}
		opts.SinceTime = &metav1.Time{Time: t}
	}
	return opts, nil
}
