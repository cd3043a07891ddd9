package fake

import (
	"context"
	"sort"

	"github.com/nanokube/nanokube/runtime"
)

// Pull is PullImage: credentials and registries play no part.
func (r *Runtime) Pull(ctx context.Context, ref string, _ runtime.PullOptions) (runtime.Image, error) {
	return r.PullImage(ctx, ref)
}

// ListImages lists the images of the containers (every image is present,
// so the store is what is in use).
func (r *Runtime) ListImages(context.Context) ([]runtime.Image, error) {
	r.mu.Lock()
	refs := map[string]bool{}
	for _, c := range r.containers {
		refs[c.st.ImageRef] = true
	}
	r.mu.Unlock()
	var out []runtime.Image
	for ref := range refs {
		if i, err := r.image(ref); err == nil {
			out = append(out, i)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Ref < out[b].Ref })
	return out, nil
}

// RemoveImage makes the image missing.
func (r *Runtime) RemoveImage(_ context.Context, ref string) error {
	if _, err := r.image(ref); err != nil {
		return err
	}
	r.SetImageMissing(ref, true)
	return nil
}

// WatchImages reports one change and then none until ctx ends.
func (r *Runtime) WatchImages(ctx context.Context, changed func()) error {
	changed()
	<-ctx.Done()
	return nil
}
