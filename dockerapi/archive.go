//go:build linux

package dockerapi

import (
	"fmt"
	"io"
	"net/http"

	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/platforms"
)

// loadImages is `docker load`: a docker-save or OCI archive in the body.
func (s *Server) loadImages(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Runtime == nil {
		fail(w, errNotImplemented("docker load is not supported by nanokube's docker-env here"))
		return
	}
	imgs, err := s.cfg.Runtime.ImportImage(r.Context(), r.Body)
	if err != nil {
		fail(w, errBadRequest("%v", err))
		return
	}
	js := newJSONStream(w)
	for _, i := range imgs {
		if name, ok := familiar(i.Ref); ok {
			js.stream(fmt.Sprintf("Loaded image: %s\n", name))
		} else {
			js.stream(fmt.Sprintf("Loaded image ID: %s\n", i.Digest))
		}
	}
}

// saveImages is `docker save`: one archive (OCI layout plus docker's
// manifest.json) with every named image, for this machine's platform.
func (s *Server) saveImages(w http.ResponseWriter, r *http.Request, names []string) {
	ctx := r.Context()
	if len(names) == 0 {
		fail(w, errBadRequest("no images given: docker save IMAGE..."))
		return
	}
	is := s.cfg.Containerd.ImageService()
	opts := []archive.ExportOpt{archive.WithPlatform(platforms.Default()), archive.WithSkipNonDistributableBlobs()}
	for _, n := range names {
		rec, matched, err := s.resolveImage(ctx, n)
		if err != nil {
			fail(w, err)
			return
		}
		export := rec.names
		if matched != "" {
			export = []string{matched}
		}
		for _, name := range export {
			opts = append(opts, archive.WithImage(is, name))
		}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	cw := &countingWriter{w: w}
	if err := s.cfg.Containerd.Export(ctx, cw, opts...); err != nil {
		if cw.n == 0 {
			fail(w, fmt.Errorf("export %v: %w", names, err))
			return
		}
		// Part of the archive is out: break the connection so the client
		// sees a failure rather than a truncated tar.
		s.log.Info("docker save", "images", names, "err", err)
		panic(http.ErrAbortHandler)
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
