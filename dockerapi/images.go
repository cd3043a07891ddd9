//go:build linux

package dockerapi

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// imageRecord is one image as docker sees it: every store name that points
// at the same config (the image ID).
type imageRecord struct {
	id     string   // config digest
	names  []string // store names, sorted
	target ocispec.Descriptor
	image  client.Image // the first name's image
	config ocispec.Image
}

// images reads the store, one record per image ID.
func (s *Server) images(ctx context.Context) ([]*imageRecord, error) {
	list, err := s.cfg.Containerd.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	byID := map[string]*imageRecord{}
	var out []*imageRecord
	for _, img := range list {
		rec, err := s.record(ctx, img)
		if err != nil {
			s.log.Debug("skip image", "name", img.Name, "err", err)
			continue
		}
		if prev, ok := byID[rec.id]; ok {
			prev.names = append(prev.names, img.Name)
			continue
		}
		byID[rec.id] = rec
		out = append(out, rec)
	}
	for _, r := range out {
		sort.Strings(r.names)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].config.Created.After(ptime(out[j].config.Created)) })
	return out, nil
}

func ptime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func (s *Server) record(ctx context.Context, img images.Image) (*imageRecord, error) {
	i := client.NewImage(s.cfg.Containerd, img)
	cfgDesc, err := i.Config(ctx)
	if err != nil {
		return nil, err
	}
	spec, err := i.Spec(ctx)
	if err != nil {
		return nil, err
	}
	if spec.Created == nil {
		spec.Created = &time.Time{}
	}
	return &imageRecord{id: cfgDesc.Digest.String(), names: []string{img.Name}, target: img.Target, image: i, config: spec}, nil
}

var idPattern = regexp.MustCompile(`^(sha256:)?[0-9a-f]{1,64}$`)

// resolveImage finds an image by name (normalized like docker), by ID or
// by a unique ID prefix. matched is the store name when found by name.
func (s *Server) resolveImage(ctx context.Context, ref string) (rec *imageRecord, matched string, err error) {
	name, nerr := normalizeTag(ref)
	if nerr == nil {
		img, err := s.cfg.Containerd.ImageService().Get(ctx, name)
		if err == nil {
			rec, err := s.record(ctx, img)
			if err != nil {
				return nil, "", err
			}
			// Gather the other names of the same image.
			all, err := s.images(ctx)
			if err != nil {
				return nil, "", err
			}
			for _, r := range all {
				if r.id == rec.id {
					return r, name, nil
				}
			}
			return rec, name, nil
		}
		if !errdefs.IsNotFound(err) {
			return nil, "", err
		}
	}
	if idPattern.MatchString(ref) {
		prefix := strings.TrimPrefix(ref, "sha256:")
		all, err := s.images(ctx)
		if err != nil {
			return nil, "", err
		}
		var found []*imageRecord
		for _, r := range all {
			if strings.HasPrefix(strings.TrimPrefix(r.id, "sha256:"), prefix) {
				found = append(found, r)
			}
		}
		if len(found) == 1 {
			return found[0], "", nil
		}
		if len(found) > 1 {
			return nil, "", errBadRequest("multiple IDs found with provided prefix: %s", ref)
		}
	}
	if nerr != nil && !idPattern.MatchString(ref) {
		return nil, "", nerr
	}
	return nil, "", errNotFound("No such image: %s", ref)
}

// dangling: the image has no name but its dangling one.
func (r *imageRecord) dangling() bool {
	for _, n := range r.names {
		if !isDangling(n) {
			return false
		}
	}
	return true
}

func (r *imageRecord) repoTags() []string {
	tags := []string{}
	for _, n := range r.names {
		if f, ok := familiar(n); ok {
			tags = append(tags, f)
		}
	}
	return tags
}

func (r *imageRecord) repoDigests() []string {
	out := []string{}
	seen := map[string]bool{}
	for _, n := range r.names {
		if d := repoDigest(n, r.target.Digest.String()); d != "" && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// layerSizes are the unpacked sizes of the image's layers (from the
// snapshotter), or the compressed blob sizes when it is not unpacked.
func (s *Server) layerSizes(ctx context.Context, r *imageRecord) []int64 {
	diffIDs := r.config.RootFS.DiffIDs
	sizes := make([]int64, len(diffIDs))
	sn := s.cfg.Containerd.SnapshotService(s.cfg.Snapshotter)
	chain := identity.ChainIDs(append([]digest.Digest{}, diffIDs...))
	unpacked := true
	for i, c := range chain {
		u, err := sn.Usage(ctx, c.String())
		if err != nil {
			unpacked = false
			break
		}
		sizes[i] = u.Size
	}
	if unpacked {
		return sizes
	}
	mf, err := images.Manifest(ctx, s.cfg.Containerd.ContentStore(), r.target, r.image.Platform())
	if err == nil && len(mf.Layers) == len(sizes) {
		for i, l := range mf.Layers {
			sizes[i] = l.Size
		}
	}
	return sizes
}

func (s *Server) imageSize(ctx context.Context, r *imageRecord) int64 {
	var total int64
	for _, n := range s.layerSizes(ctx, r) {
		total += n
	}
	return total
}

type imageSummary struct {
	Containers  int                `json:"Containers"`
	Created     int64              `json:"Created"`
	ID          string             `json:"Id"`
	Labels      map[string]string  `json:"Labels"`
	ParentID    string             `json:"ParentId"`
	RepoDigests []string           `json:"RepoDigests"`
	RepoTags    []string           `json:"RepoTags"`
	SharedSize  int64              `json:"SharedSize"`
	Size        int64              `json:"Size"`
	Descriptor  ocispec.Descriptor `json:"Descriptor"`
}

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	if err := f.only("reference", "label", "dangling", "before", "since"); err != nil {
		fail(w, err)
		return
	}
	all, err := s.images(ctx)
	if err != nil {
		fail(w, err)
		return
	}
	var before, since *time.Time
	for key, dst := range map[string]**time.Time{"before": &before, "since": &since} {
		for _, v := range f[key] {
			rec, _, err := s.resolveImage(ctx, v)
			if err != nil {
				fail(w, err)
				return
			}
			t := ptime(rec.config.Created)
			*dst = &t
		}
	}
	out := []imageSummary{}
	for _, rec := range all {
		created := ptime(rec.config.Created)
		if before != nil && !created.Before(*before) || since != nil && !created.After(*since) {
			continue
		}
		if vs := f["dangling"]; len(vs) > 0 && (vs[0] == "true") != rec.dangling() {
			continue
		}
		if !f.matchLabels(rec.config.Config.Labels) {
			continue
		}
		tags := rec.repoTags()
		if pats := f["reference"]; len(pats) > 0 {
			tags = matchReferences(tags, pats)
			if len(tags) == 0 {
				continue
			}
		}
		out = append(out, imageSummary{
			Containers: -1, Created: created.Unix(), ID: rec.id, Labels: rec.config.Config.Labels,
			RepoDigests: rec.repoDigests(), RepoTags: tags, SharedSize: -1, Size: s.imageSize(ctx, rec), Descriptor: rec.target,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) tagImage(w http.ResponseWriter, r *http.Request, name string) {
	ctx := r.Context()
	q := r.URL.Query()
	repo, tag := q.Get("repo"), q.Get("tag")
	if repo == "" {
		fail(w, errBadRequest("repository name must have at least one component"))
		return
	}
	if tag != "" {
		repo += ":" + tag
	}
	target, err := normalizeTag(repo)
	if err != nil {
		fail(w, err)
		return
	}
	rec, _, err := s.resolveImage(ctx, name)
	if err != nil {
		fail(w, err)
		return
	}
	if err := s.setName(ctx, target, rec.target); err != nil {
		fail(w, err)
		return
	}
	// A tagged image is no longer dangling.
	for _, n := range rec.names {
		if isDangling(n) {
			s.cfg.Containerd.ImageService().Delete(ctx, n)
		}
	}
	w.WriteHeader(http.StatusCreated)
}

// setName points name at target, creating or moving the name.
func (s *Server) setName(ctx context.Context, name string, target ocispec.Descriptor) error {
	is := s.cfg.Containerd.ImageService()
	img := images.Image{Name: name, Target: target}
	if _, err := is.Create(ctx, img); err != nil {
		if !errdefs.IsAlreadyExists(err) {
			return fmt.Errorf("tag %s: %w", name, err)
		}
		if _, err := is.Update(ctx, img, "target"); err != nil {
			return fmt.Errorf("tag %s: %w", name, err)
		}
	}
	return nil
}

type deleteItem struct {
	Untagged string `json:"Untagged,omitempty"`
	Deleted  string `json:"Deleted,omitempty"`
}

func (s *Server) removeImage(w http.ResponseWriter, r *http.Request, name string) {
	ctx := r.Context()
	force := boolParam(r, "force")
	rec, matched, err := s.resolveImage(ctx, name)
	if err != nil {
		fail(w, err)
		return
	}
	users, err := s.imageUsers(ctx, rec)
	if err != nil {
		fail(w, err)
		return
	}
	remove := rec.names
	if matched != "" {
		remove = []string{matched}
		if onlyDanglingBesides(rec.names, matched) {
			// The last real name goes: the image goes with it.
			remove = rec.names
		}
		if u := users[matched]; u != nil && !force {
			fail(w, errConflict("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s",
				name, shortID(u.id), shortID(rec.id)))
			return
		}
	} else {
		if len(rec.names) > 1 && !force {
			fail(w, errConflict("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", shortID(rec.id)))
			return
		}
		for _, u := range users {
			if u.running && !force {
				fail(w, errConflict("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s", shortID(rec.id), shortID(u.id)))
				return
			}
		}
	}
	out := []deleteItem{}
	is := s.cfg.Containerd.ImageService()
	for i, n := range remove {
		var opts []images.DeleteOpt
		if i == len(remove)-1 {
			opts = append(opts, images.SynchronousDelete())
		}
		if err := is.Delete(ctx, n, opts...); err != nil && !errdefs.IsNotFound(err) {
			fail(w, fmt.Errorf("delete %s: %w", n, err))
			return
		}
		if f, ok := familiar(n); ok {
			out = append(out, deleteItem{Untagged: f})
		}
	}
	if len(remove) == len(rec.names) {
		out = append(out, deleteItem{Deleted: rec.id})
	}
	writeJSON(w, http.StatusOK, out)
}

func onlyDanglingBesides(names []string, name string) bool {
	for _, n := range names {
		if n != name && !isDangling(n) {
			return false
		}
	}
	return true
}

// imageUsers maps each name of rec to a container using it.
func (s *Server) imageUsers(ctx context.Context, rec *imageRecord) (map[string]*containerRecord, error) {
	ctrs, err := s.containers(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]*containerRecord{}
	for _, c := range ctrs {
		for _, n := range rec.names {
			if c.image == n && (out[n] == nil || c.running) {
				out[n] = c
			}
		}
	}
	return out, nil
}
