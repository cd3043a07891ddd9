//go:build linux

package runtime

import (
	"context"
	"fmt"
	"io"

	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/platforms"
)

// WatchImages calls changed once the subscription to containerd's image
// events stands, then after every image create, update or delete in the
// runtime's namespace, until ctx ends or the event stream fails.
func (r *ContainerdRuntime) WatchImages(ctx context.Context, changed func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	evs, errs := r.c.Subscribe(ctx, fmt.Sprintf(`namespace==%q,topic~="^/images/"`, r.ns))
	changed()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("image events: %w", err)
		case <-evs:
			changed()
		}
	}
}

// SaveImage writes the named images as one archive (OCI layout plus
// docker's manifest.json) for this machine's platform, which `image load`
// and `docker load` read back.
func (r *ContainerdRuntime) SaveImage(ctx context.Context, w io.Writer, refs ...string) error {
	ctx = r.ctx(ctx)
	is := r.c.ImageService()
	opts := []archive.ExportOpt{archive.WithPlatform(platforms.Default()), archive.WithSkipNonDistributableBlobs()}
	for _, ref := range refs {
		if _, err := is.Get(ctx, NormalizeRef(ref)); err != nil {
			return fmt.Errorf("image %s: %w", ref, err)
		}
		opts = append(opts, archive.WithImage(is, NormalizeRef(ref)))
	}
	if err := r.c.Export(ctx, w, opts...); err != nil {
		return fmt.Errorf("export %v: %w", refs, err)
	}
	return nil
}

// shimGroupAnnotation is what the runc v2 shim (containerd ≥ 1.6) groups
// containers by: the first container of a group starts the shim, the
// others connect to its socket, and it exits with the last one.
const shimGroupAnnotation = "io.containerd.runc.v2.group"
