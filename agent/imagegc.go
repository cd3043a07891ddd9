package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nanokube/nanokube/runtime"
)

// ImageGCPolicy is kubelet's image GC policy: collect when the image
// filesystem is HighThresholdPercent full, down to LowThresholdPercent,
// every Period, sparing images first seen less than MinimumAge ago.
type ImageGCPolicy struct {
	HighThresholdPercent int           // --image-gc-high-threshold
	LowThresholdPercent  int           // --image-gc-low-threshold
	MinimumAge           time.Duration // --image-minimum-gc-age
	Period               time.Duration // kubelet's ImageGCPeriod (not a kubelet flag)
}

// DefaultImageGCPolicy is kubelet's: 85%, 80%, 2m, every 5 minutes.
func DefaultImageGCPolicy() ImageGCPolicy {
	return ImageGCPolicy{HighThresholdPercent: 85, LowThresholdPercent: 80, MinimumAge: 2 * time.Minute, Period: 5 * time.Minute}
}

// imageGCRuntime is what image GC needs of the runtime.
type imageGCRuntime interface {
	ListImages(ctx context.Context) ([]runtime.Image, error)
	RemoveImage(ctx context.Context, ref string) error
	List(ctx context.Context, labels map[string]string) ([]runtime.Status, error)
}

// imageGC is kubelet's image garbage collector: when the image filesystem
// is above the high threshold it removes unused images, least recently
// used (then oldest) first, until usage is below the low threshold. Images
// of any container (running or not) are never removed.
type imageGC struct {
	rt        imageGCRuntime
	fsStats   func() (capacity, available int64, err error)
	high, low int
	minAge    time.Duration
	now       func() time.Time
	lastUsed  map[string]time.Time // by image ID
}

func newImageGC(rt imageGCRuntime, fsStats func() (int64, int64, error), p ImageGCPolicy) *imageGC {
	return &imageGC{rt: rt, fsStats: fsStats, high: p.HighThresholdPercent, low: p.LowThresholdPercent,
		minAge: p.MinimumAge, now: time.Now, lastUsed: map[string]time.Time{}}
}

// gcImage is one image ID with all its names.
type gcImage struct {
	id      string
	names   []string
	size    int64
	created time.Time
}

// collect frees space if usage is above the high threshold. It returns the
// bytes freed; an error when it could not get below the low threshold.
func (g *imageGC) collect(ctx context.Context) (int64, error) {
	capacity, available, err := g.fsStats()
	if err != nil {
		return 0, fmt.Errorf("image filesystem stats: %w", err)
	}
	if capacity <= 0 {
		return 0, nil
	}
	usage := 100 - available*100/capacity
	if usage < int64(g.high) {
		return 0, nil
	}
	want := capacity*int64(100-g.low)/100 - available
	freed, err := g.free(ctx, want)
	if err != nil {
		return freed, err
	}
	if freed < want {
		return freed, &notEnoughFreedError{want: want, freed: freed}
	}
	return freed, nil
}

// free removes unused images until want bytes are freed.
func (g *imageGC) free(ctx context.Context, want int64) (int64, error) {
	imgs, err := g.rt.ListImages(ctx)
	if err != nil {
		return 0, fmt.Errorf("list images: %w", err)
	}
	ctrs, err := g.rt.List(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("list containers: %w", err)
	}
	byName := map[string]string{}
	byID := map[string]*gcImage{}
	for _, i := range imgs {
		id := i.Digest
		if id == "" {
			id = i.Ref
		}
		byName[i.Ref] = id
		gi := byID[id]
		if gi == nil {
			gi = &gcImage{id: id, size: i.Size, created: i.CreatedAt}
			byID[id] = gi
		}
		gi.names = append(gi.names, i.Ref)
		if i.CreatedAt.Before(gi.created) {
			gi.created = i.CreatedAt
		}
	}
	now := g.now()
	inUse := map[string]bool{}
	for _, c := range ctrs {
		if id, ok := byName[runtime.NormalizeRef(c.ImageRef)]; ok {
			inUse[id] = true
			g.lastUsed[id] = now
		}
	}
	for id := range g.lastUsed {
		if byID[id] == nil {
			delete(g.lastUsed, id)
		}
	}
	var candidates []*gcImage
	for id, gi := range byID {
		if inUse[id] || now.Sub(gi.created) < g.minAge {
			continue
		}
		candidates = append(candidates, gi)
	}
	sort.Slice(candidates, func(a, b int) bool {
		ua, ub := g.lastUsed[candidates[a].id], g.lastUsed[candidates[b].id]
		if !ua.Equal(ub) {
			return ua.Before(ub)
		}
		if !candidates[a].created.Equal(candidates[b].created) {
			return candidates[a].created.Before(candidates[b].created)
		}
		return candidates[a].id < candidates[b].id
	})
	var freed int64
	for _, gi := range candidates {
		if freed >= want {
			break
		}
		for _, n := range gi.names {
			if err := g.rt.RemoveImage(ctx, n); err != nil {
				return freed, fmt.Errorf("remove image %s: %w", n, err)
			}
		}
		delete(g.lastUsed, gi.id)
		freed += gi.size
	}
	return freed, nil
}

// statfs reports the capacity and free bytes of dir's filesystem.
func statfs(dir string) func() (int64, int64, error) {
	return func() (int64, int64, error) {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return 0, 0, err
		}
		return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize, nil
	}
}

// runImageGC collects images every period until ctx ends, with kubelet's
// events on the node: FreeDiskSpaceFailed when a run could not free
// enough, ImageGCFailed when runs fail twice in a row.
func (a *Agent) runImageGC(ctx context.Context) {
	p := a.cfg.ImageGC
	if p.Period <= 0 {
		p = DefaultImageGCPolicy()
	}
	g := newImageGC(a.cfg.Runtime, statfs(a.cfg.ImageFS), p)
	ref := &corev1.ObjectReference{Kind: "Node", Name: a.cfg.NodeName, UID: types.UID(a.cfg.NodeName)}
	t := time.NewTicker(p.Period)
	defer t.Stop()
	failedBefore := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		freed, err := g.collect(ctx)
		if freed > 0 {
			a.log.Info("image garbage collection", "node", a.cfg.NodeName, "freed_bytes", freed)
		}
		if ctx.Err() != nil {
			return
		}
		var reasons []string
		reasons, failedBefore = gcEvents(err, failedBefore)
		for _, r := range reasons {
			a.recorder.Event(ref, corev1.EventTypeWarning, r, err.Error())
		}
		if err != nil && len(reasons) == 0 {
			a.log.Warn("image garbage collection failed once", "node", a.cfg.NodeName, "err", err)
		}
	}
}

// gcEvents are the node events of a GC run like kubelet's:
// FreeDiskSpaceFailed whenever the unused images were not enough, and
// ImageGCFailed only for a second failure in a row. It returns whether
// this run failed, for the next.
func gcEvents(err error, failedBefore bool) ([]string, bool) {
	if err == nil {
		return nil, false
	}
	var reasons []string
	var short *notEnoughFreedError
	if errors.As(err, &short) {
		reasons = append(reasons, "FreeDiskSpaceFailed")
	}
	if failedBefore {
		reasons = append(reasons, "ImageGCFailed")
	}
	return reasons, true
}

// notEnoughFreedError is kubelet's FreeDiskSpaceFailed condition: the
// unused images were not enough to get below the low threshold.
type notEnoughFreedError struct{ want, freed int64 }

func (e *notEnoughFreedError) Error() string {
	return fmt.Sprintf("Failed to garbage collect required amount of images. Attempted to free %d bytes, but only found %d bytes eligible to free.", e.want, e.freed)
}
