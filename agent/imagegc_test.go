package agent

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/nanokube/nanokube/runtime"
)

// fakeImageStore is an image store on a disk of 1000 bytes: other files
// use `other` bytes, every image its size.
type fakeImageStore struct {
	images []runtime.Image
	ctrs   []runtime.Status
	other  int64
}

func (f *fakeImageStore) ListImages(context.Context) ([]runtime.Image, error) {
	return append([]runtime.Image(nil), f.images...), nil
}

func (f *fakeImageStore) RemoveImage(_ context.Context, ref string) error {
	for i, im := range f.images {
		if im.Ref == ref {
			f.images = append(f.images[:i], f.images[i+1:]...)
			return nil
		}
	}
	return runtime.ErrImageNotFound
}

func (f *fakeImageStore) List(context.Context, map[string]string) ([]runtime.Status, error) {
	return f.ctrs, nil
}

func (f *fakeImageStore) stats() (int64, int64, error) {
	used := f.other
	seen := map[string]bool{}
	for _, im := range f.images {
		if !seen[im.Digest] {
			used += im.Size
			seen[im.Digest] = true
		}
	}
	return 1000, 1000 - used, nil
}

func (f *fakeImageStore) refs() []string {
	var out []string
	for _, im := range f.images {
		out = append(out, im.Ref)
	}
	sort.Strings(out)
	return out
}

func TestImageGCLikeKubelet(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	img := func(ref, id string, size int64, created time.Time) runtime.Image {
		return runtime.Image{Ref: ref, Digest: id, Size: size, CreatedAt: created}
	}
	f := &fakeImageStore{other: 500, images: []runtime.Image{
		img("docker.io/library/oldest:1", "sha256:a", 100, ago(3*time.Hour)),
		img("docker.io/library/oldest:alias", "sha256:a", 100, ago(3*time.Hour)), // same image, second name
		img("docker.io/library/older:1", "sha256:b", 100, ago(2*time.Hour)),
		img("docker.io/library/newer:1", "sha256:c", 100, ago(time.Hour)),
		img("docker.io/library/used:1", "sha256:d", 100, ago(4*time.Hour)),    // oldest, but a container uses it
		img("docker.io/library/fresh:1", "sha256:e", 50, ago(30*time.Second)), // younger than the minimum age
	}, ctrs: []runtime.Status{{ID: "c1", ImageRef: "used:1"}}}
	g := newImageGC(f, f.stats, DefaultImageGCPolicy())
	g.now = func() time.Time { return now }

	// 950/1000 = 95% used ≥ 85%: free down to 80% (800), so 150 bytes:
	// the two oldest unused images go, the one in use and the fresh one stay.
	freed, err := g.collect(context.Background())
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	if freed != 200 {
		t.Errorf("freed %d bytes, want 200", freed)
	}
	want := []string{"docker.io/library/fresh:1", "docker.io/library/newer:1", "docker.io/library/used:1"}
	if got := f.refs(); !reflect.DeepEqual(got, want) {
		t.Errorf("after GC images = %v, want %v", got, want)
	}

	// 750/1000 is below the high threshold: nothing happens.
	if freed, err := g.collect(context.Background()); err != nil || freed != 0 {
		t.Errorf("below the threshold: freed %d, err %v", freed, err)
	}

	// Over the threshold with too little eligible: kubelet's message.
	f.other = 800
	_, err = g.collect(context.Background())
	if err == nil || err.Error() != "Failed to garbage collect required amount of images. Attempted to free 250 bytes, but only found 100 bytes eligible to free." {
		t.Errorf("err = %v", err)
	}
	if got := f.refs(); !reflect.DeepEqual(got, []string{"docker.io/library/fresh:1", "docker.io/library/used:1"}) {
		t.Errorf("images in use or fresh were removed: %v", got)
	}
}

func TestImageGCPrefersLeastRecentlyUsed(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	f := &fakeImageStore{other: 700, images: []runtime.Image{
		{Ref: "docker.io/library/a:1", Digest: "sha256:a", Size: 100, CreatedAt: now.Add(-5 * time.Hour)},
		{Ref: "docker.io/library/b:1", Digest: "sha256:b", Size: 100, CreatedAt: now.Add(-4 * time.Hour)},
	}, ctrs: []runtime.Status{{ImageRef: "docker.io/library/a:1"}}}
	g := newImageGC(f, f.stats, DefaultImageGCPolicy())
	g.now = func() time.Time { return now }
	// 900 used: a is in use, b goes.
	if _, err := g.collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	// a's container is gone; a was used 10 minutes ago, c never: c first.
	f.images = append(f.images, runtime.Image{Ref: "docker.io/library/c:1", Digest: "sha256:c", Size: 100, CreatedAt: now.Add(-time.Hour)})
	f.ctrs = nil
	now = now.Add(10 * time.Minute)
	f.other = 750 // 950 used, 150 to free: c then a
	if _, err := g.collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.refs(); len(got) != 0 {
		t.Errorf("images left: %v", got)
	}
}

func TestPullBackoffDoublesToFiveMinutes(t *testing.T) {
	var p pullBackoffs
	now := time.Now()
	var got []time.Duration
	for range 7 {
		got = append(got, p.failed("uid/img", now, "boom"))
		if b, held := p.inBackoff("uid/img", now.Add(time.Second)); !held || b.lastErr != "boom" {
			t.Fatalf("not in back-off right after a failure")
		}
		now = now.Add(got[len(got)-1])
		if _, held := p.inBackoff("uid/img", now); held {
			t.Fatalf("still in back-off after %s", got[len(got)-1])
		}
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("delays %v, want %v", got, want)
	}
	p.succeeded("uid/img")
	if d := p.failed("uid/img", now, "again"); d != 10*time.Second {
		t.Errorf("after a success the delay starts at %s, want 10s", d)
	}
}

func TestNodeImagesLikeKubelet(t *testing.T) {
	got := nodeImages([]runtime.Image{
		{Ref: "docker.io/library/small:1", Digest: "sha256:s", Target: "sha256:ms", Size: 10},
		{Ref: "127.0.0.1:5000/big:v1", Digest: "sha256:b", Target: "sha256:mb", Size: 1000},
		{Ref: "127.0.0.1:5000/big:latest", Digest: "sha256:b", Target: "sha256:mb", Size: 1000},
	})
	want := `[{[127.0.0.1:5000/big@sha256:mb 127.0.0.1:5000/big:v1 127.0.0.1:5000/big:latest] 1000} {[docker.io/library/small@sha256:ms docker.io/library/small:1] 10}]`
	if s := fmtImages(got); s != want {
		t.Errorf("node images\n got %s\nwant %s", s, want)
	}
}

func fmtImages(imgs interface{}) string { return fmt.Sprint(imgs) }

func TestImageGCEventsLikeKubelet(t *testing.T) {
	short := &notEnoughFreedError{want: 10, freed: 2}
	other := fmt.Errorf("list images: %w", context.DeadlineExceeded)
	for _, c := range []struct {
		err          error
		failedBefore bool
		want         []string
	}{
		{nil, true, nil},
		{short, false, []string{"FreeDiskSpaceFailed"}},
		{short, true, []string{"FreeDiskSpaceFailed", "ImageGCFailed"}},
		{other, false, nil},
		{other, true, []string{"ImageGCFailed"}},
	} {
		got, failed := gcEvents(c.err, c.failedBefore)
		if !reflect.DeepEqual(got, c.want) || failed != (c.err != nil) {
			t.Errorf("gcEvents(%v, %v) = %v, %v; want %v", c.err, c.failedBefore, got, failed, c.want)
		}
	}
}
