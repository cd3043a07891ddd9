//go:build linux

package dockerapi

import (
	"net/http"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type imageInspect struct {
	ID            string             `json:"Id"`
	RepoTags      []string           `json:"RepoTags"`
	RepoDigests   []string           `json:"RepoDigests"`
	Parent        string             `json:"Parent"`
	Comment       string             `json:"Comment"`
	Created       string             `json:"Created"`
	DockerVersion string             `json:"DockerVersion"`
	Author        string             `json:"Author"`
	Config        imageConfig        `json:"Config"`
	Architecture  string             `json:"Architecture"`
	Variant       string             `json:"Variant,omitempty"`
	Os            string             `json:"Os"`
	Size          int64              `json:"Size"`
	GraphDriver   graphDriver        `json:"GraphDriver"`
	RootFS        rootFS             `json:"RootFS"`
	Metadata      map[string]string  `json:"Metadata"`
	Descriptor    ocispec.Descriptor `json:"Descriptor"`
}

type imageConfig struct {
	User         string              `json:"User"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Entrypoint   []string            `json:"Entrypoint"`
	Volumes      map[string]struct{} `json:"Volumes"`
	WorkingDir   string              `json:"WorkingDir"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	OnBuild      []string            `json:"OnBuild"`
}

type graphDriver struct {
	Name string            `json:"Name"`
	Data map[string]string `json:"Data"`
}

type rootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

func (s *Server) inspectImage(w http.ResponseWriter, r *http.Request, name string) {
	ctx := r.Context()
	rec, _, err := s.resolveImage(ctx, name)
	if err != nil {
		fail(w, err)
		return
	}
	c := rec.config
	layers := []string{}
	for _, d := range c.RootFS.DiffIDs {
		layers = append(layers, d.String())
	}
	writeJSON(w, http.StatusOK, imageInspect{
		ID: rec.id, RepoTags: rec.repoTags(), RepoDigests: rec.repoDigests(), Created: ptime(c.Created).UTC().Format(time.RFC3339Nano),
		Author: c.Author,
		Config: imageConfig{
			User: c.Config.User, ExposedPorts: c.Config.ExposedPorts, Env: c.Config.Env, Cmd: c.Config.Cmd, Entrypoint: c.Config.Entrypoint,
			Volumes: c.Config.Volumes, WorkingDir: c.Config.WorkingDir, Labels: c.Config.Labels, StopSignal: c.Config.StopSignal,
		},
		Architecture: c.Architecture, Variant: c.Variant, Os: c.OS, Size: s.imageSize(ctx, rec),
		GraphDriver: graphDriver{Name: s.cfg.Snapshotter}, RootFS: rootFS{Type: "layers", Layers: layers},
		Metadata: map[string]string{"LastTagTime": "0001-01-01T00:00:00Z"}, Descriptor: rec.target,
	})
}

type historyItem struct {
	ID        string   `json:"Id"`
	Created   int64    `json:"Created"`
	CreatedBy string   `json:"CreatedBy"`
	Tags      []string `json:"Tags"`
	Size      int64    `json:"Size"`
	Comment   string   `json:"Comment"`
}

func (s *Server) imageHistory(w http.ResponseWriter, r *http.Request, name string) {
	ctx := r.Context()
	rec, _, err := s.resolveImage(ctx, name)
	if err != nil {
		fail(w, err)
		return
	}
	sizes := s.layerSizes(ctx, rec)
	out := []historyItem{}
	layer := 0
	for _, h := range rec.config.History {
		item := historyItem{ID: "<missing>", Created: ptime(h.Created).Unix(), CreatedBy: h.CreatedBy, Comment: h.Comment}
		if !h.EmptyLayer && layer < len(sizes) {
			item.Size = sizes[layer]
			layer++
		}
		out = append(out, item)
	}
	if len(out) == 0 {
		out = append(out, historyItem{Created: ptime(rec.config.Created).Unix()})
	}
	// Newest first; the newest carries the image ID and its tags.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	out[0].ID, out[0].Tags = rec.id, rec.repoTags()
	writeJSON(w, http.StatusOK, out)
}
