//go:build linux

package dockerapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"
)

// BuildRequest is one Dockerfile build.
type BuildRequest struct {
	ContextDir    string
	DockerfileDir string
	Dockerfile    string   // path of the Dockerfile inside DockerfileDir
	Tags          []string // full references (normalizeTag)
	BuildArgs     map[string]string
	Labels        map[string]string
	Target        string
	NoCache       bool
	Pull          bool
	Platform      string
	ExtraHosts    []string
	Progress      io.Writer // BuildKit's plain progress output; nil = none
}

// BuildResult is the built image.
type BuildResult struct {
	ImageID string // config digest, what docker calls the image ID
	Digest  string // manifest digest
}

// Build runs a Dockerfile build and stores the image under its tags in
// the cluster's image store, unpacked for the pods' snapshotter.
func (b *Builder) Build(ctx context.Context, req BuildRequest) (BuildResult, error) {
	bk, err := b.get(ctx)
	if err != nil {
		return BuildResult{}, err
	}
	attrs := map[string]string{"filename": req.Dockerfile}
	if req.Target != "" {
		attrs["target"] = req.Target
	}
	for k, v := range req.BuildArgs {
		attrs["build-arg:"+k] = v
	}
	for k, v := range req.Labels {
		attrs["label:"+k] = v
	}
	if req.NoCache {
		attrs["no-cache"] = ""
	}
	if req.Pull {
		attrs["image-resolve-mode"] = "pull"
	}
	if req.Platform != "" {
		attrs["platform"] = req.Platform
	}
	if len(req.ExtraHosts) > 0 {
		attrs["add-hosts"] = strings.Join(req.ExtraHosts, ",")
	}
	exportAttrs := map[string]string{string(exptypes.OptKeyUnpack): "true"}
	if len(req.Tags) > 0 {
		exportAttrs[string(exptypes.OptKeyName)] = strings.Join(req.Tags, ",")
	} else {
		exportAttrs[string(exptypes.OptKeyDanglingPrefix)] = danglingPrefix
	}
	ctxFS, err := fsutil.NewFS(req.ContextDir)
	if err != nil {
		return BuildResult{}, err
	}
	dfFS, err := fsutil.NewFS(req.DockerfileDir)
	if err != nil {
		return BuildResult{}, err
	}
	opt := bkclient.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		LocalMounts:   map[string]fsutil.FS{"context": ctxFS, "dockerfile": dfFS},
		Exports:       []bkclient.ExportEntry{{Type: bkclient.ExporterImage, Attrs: exportAttrs}},
	}
	progress := req.Progress
	if progress == nil {
		progress = io.Discard
	}
	display, err := progressui.NewDisplay(progress, progressui.PlainMode)
	if err != nil {
		return BuildResult{}, err
	}
	ch := make(chan *bkclient.SolveStatus)
	var res *bkclient.SolveResponse
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		res, err = bk.client.Solve(gctx, nil, opt, ch)
		return err
	})
	g.Go(func() error {
		// Drain every status, also after a failure, so the log ends with
		// the failing step's output.
		_, err := display.UpdateFrom(context.WithoutCancel(gctx), ch)
		return err
	})
	if err := g.Wait(); err != nil {
		return BuildResult{}, explainBuildError(err)
	}
	return BuildResult{ImageID: res.ExporterResponse[exptypes.ExporterImageConfigDigestKey], Digest: res.ExporterResponse[exptypes.ExporterImageDigestKey]}, nil
}

// explainBuildError adds what to do when a base image could not be found.
func explainBuildError(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "failed to resolve source metadata") {
		return fmt.Errorf("%w\nthe base image is not in the cluster's image store and could not be pulled: load it with `docker load` or `nanokube image load`, or build it first", err)
	}
	return err
}

// build is POST /build: the classic endpoint the docker CLI uses without
// buildx, with the context as a (possibly gzipped) tar in the body.
func (s *Server) build(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for _, p := range []string{"remote", "outputs", "squash"} {
		if v := q.Get(p); v != "" && v != "0" && v != "false" {
			fail(w, errNotImplemented("build parameter %q is not supported by nanokube's docker-env", p))
			return
		}
	}
	req := BuildRequest{
		Dockerfile: q.Get("dockerfile"), Target: q.Get("target"), NoCache: boolParam(r, "nocache"),
		Pull: boolParam(r, "pull"), Platform: q.Get("platform"),
	}
	if req.Dockerfile == "" {
		req.Dockerfile = "Dockerfile"
	}
	if nm := q.Get("networkmode"); nm != "" && nm != "default" {
		fail(w, errNotImplemented("docker build --network=%s is not supported by nanokube's docker-env: build steps use the daemon's network", nm))
		return
	}
	for _, t := range q["t"] {
		n, err := normalizeTag(t)
		if err != nil {
			fail(w, err)
			return
		}
		req.Tags = append(req.Tags, n)
	}
	var err error
	if req.BuildArgs, err = jsonStringMap(q.Get("buildargs")); err != nil {
		fail(w, errBadRequest("invalid buildargs: %v", err))
		return
	}
	if req.Labels, err = jsonStringMap(q.Get("labels")); err != nil {
		fail(w, errBadRequest("invalid labels: %v", err))
		return
	}
	if h := q.Get("extrahosts"); h != "" {
		req.ExtraHosts = strings.Split(h, ",")
	}
	dir, err := os.MkdirTemp(s.contextsDir(), "ctx-")
	if err != nil {
		fail(w, fmt.Errorf("create build context dir: %w", err))
		return
	}
	defer os.RemoveAll(dir)
	isTar, err := extractContext(r.Body, dir)
	if err != nil {
		fail(w, errBadRequest("read build context: %v", err))
		return
	}
	if !isTar {
		req.Dockerfile = "Dockerfile"
	}
	req.ContextDir, req.DockerfileDir = dir, dir
	js := newJSONStream(w)
	quiet := boolParam(r, "q")
	if !quiet {
		req.Progress = js
	}
	res, err := s.builder.Build(r.Context(), req)
	if err != nil {
		js.fail(err.Error())
		return
	}
	js.aux(map[string]string{"ID": res.ImageID})
	if quiet {
		// `docker build -q` prints what the stream holds: only the ID.
		js.stream(res.ImageID + "\n")
		return
	}
	js.stream(fmt.Sprintf("Successfully built %s\n", shortID(res.ImageID)))
	for _, t := range req.Tags {
		f, _ := familiar(t)
		js.stream(fmt.Sprintf("Successfully tagged %s\n", f))
	}
}

// contextsDir holds uploaded build contexts, on the builder's disk (not a
// tmpfs that would hold them in memory).
func (s *Server) contextsDir() string {
	d := filepath.Join(s.cfg.Root, "contexts")
	os.MkdirAll(d, 0o700)
	return d
}

// jsonStringMap reads {"k": "v"} where a null value means unset.
func jsonStringMap(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]*string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range m {
		if v != nil {
			out[k] = *v
		}
	}
	return out, nil
}

// buildPrune is `docker builder prune`: it empties BuildKit's cache.
func (s *Server) buildPrune(w http.ResponseWriter, r *http.Request) {
	bk, err := s.builder.get(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	var pf []string
	for k, vs := range f {
		for _, v := range vs {
			pf = append(pf, k+"=="+v)
		}
	}
	sort.Strings(pf)
	ch := make(chan bkclient.UsageInfo)
	var reclaimed int64
	var ids []string
	g, gctx := errgroup.WithContext(r.Context())
	g.Go(func() error {
		defer close(ch)
		opts := []bkclient.PruneOption{bkclient.WithFilter(pf)}
		if boolParam(r, "all") {
			opts = append(opts, bkclient.PruneAll)
		}
		return bk.client.Prune(gctx, ch, opts...)
	})
	g.Go(func() error {
		for u := range ch {
			reclaimed += u.Size
			ids = append(ids, u.ID)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		fail(w, fmt.Errorf("prune build cache: %w", err))
		return
	}
	if ids == nil {
		ids = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"CachesDeleted": ids, "SpaceReclaimed": reclaimed})
}
