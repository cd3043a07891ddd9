package agent

import (
	"context"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nanokube/nanokube/runtime"
)

// maxNodeImages is kubelet's --node-status-max-images default.
const maxNodeImages = 50

// nodeImages is node.status.images from the runtime's images like
// kubelet's: one entry per image ID with its repo@digest and repo:tag
// names, the largest first, at most maxNodeImages.
func nodeImages(imgs []runtime.Image) []corev1.ContainerImage {
	byID := map[string]*corev1.ContainerImage{}
	var order []string
	for _, i := range imgs {
		id := i.Digest
		if id == "" {
			id = i.Ref
		}
		ci := byID[id]
		if ci == nil {
			ci = &corev1.ContainerImage{SizeBytes: i.Size}
			byID[id] = ci
			order = append(order, id)
		}
		if !strings.Contains(i.Ref, "@") && i.Target != "" {
			ci.Names = appendNew(ci.Names, imageRepo(i.Ref)+"@"+i.Target)
		}
		ci.Names = appendNew(ci.Names, i.Ref)
	}
	out := make([]corev1.ContainerImage, 0, len(order))
	for _, id := range order {
		ci := byID[id]
		// digests first, then tags, like kubelet's RepoDigests + RepoTags
		sort.SliceStable(ci.Names, func(a, b int) bool {
			return strings.Contains(ci.Names[a], "@") && !strings.Contains(ci.Names[b], "@")
		})
		out = append(out, *ci)
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].SizeBytes > out[b].SizeBytes })
	if len(out) > maxNodeImages {
		out = out[:maxNodeImages]
	}
	return out
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// imageStatus keeps node.status.images up to date, driven by containerd's
// image events (no polling), until ctx ends.
func (a *Agent) imageStatus(ctx context.Context) {
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := a.cfg.Runtime.WatchImages(ctx, notify); err != nil {
				a.log.Info("watch image events, resubscribing", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	defer func() { <-done }()
	var published []corev1.ContainerImage
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-retry:
		}
		retry = nil
		imgs, err := a.cfg.Runtime.ListImages(ctx)
		if err == nil {
			want := nodeImages(imgs)
			if published != nil && reflect.DeepEqual(want, published) {
				continue
			}
			if err = a.patchNodeImages(ctx, want); err == nil {
				published = want
				continue
			}
		}
		if ctx.Err() == nil {
			a.log.Info("update node images", "node", a.cfg.NodeName, "err", err)
			retry = time.After(5 * time.Second)
		}
	}
}

func (a *Agent) patchNodeImages(ctx context.Context, imgs []corev1.ContainerImage) error {
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"images": imgs}})
	if err != nil {
		return err
	}
	_, err = a.cfg.Client.CoreV1().Nodes().Patch(ctx, a.cfg.NodeName, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}
