package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nanokube/nanokube/runtime"
)

// Kubelet's image pull back-off: 10s doubling to 5m, per pod and image,
// forgotten after twice the maximum without a failure.
const (
	pullBackoffInitial = 10 * time.Second
	pullBackoffMax     = 300 * time.Second
	// pullTimeout bounds one pull; an unreachable registry fails much
	// sooner (the runtime's dial and handshake timeouts).
	pullTimeout = 5 * time.Minute
)

// pullBackoffs is kubelet's flowcontrol.Backoff for image pulls.
type pullBackoffs struct {
	mu      sync.Mutex
	entries map[string]*pullBackoff
}

type pullBackoff struct {
	delay   time.Duration
	until   time.Time // no pull before
	lastErr string
}

// inBackoff reports the back-off that still holds for key.
func (p *pullBackoffs) inBackoff(key string, now time.Time) (*pullBackoff, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.entries[key]
	if b == nil || !now.Before(b.until) {
		return b, false
	}
	c := *b
	return &c, true
}

// failed records a failed pull and returns the delay before the next one.
func (p *pullBackoffs) failed(key string, now time.Time, err string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.entries == nil {
		p.entries = map[string]*pullBackoff{}
	}
	for k, b := range p.entries {
		if now.Sub(b.until) > 2*pullBackoffMax {
			delete(p.entries, k)
		}
	}
	b := p.entries[key]
	switch {
	case b == nil:
		b = &pullBackoff{delay: pullBackoffInitial}
		p.entries[key] = b
	default:
		b.delay = min(2*b.delay, pullBackoffMax)
	}
	b.until, b.lastErr = now.Add(b.delay), err
	return b.delay
}

func (p *pullBackoffs) succeeded(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.entries, key)
}

// pullPolicy is the container's policy, or the API's default when unset:
// Always for :latest or no tag, IfNotPresent otherwise.
func pullPolicy(c corev1.Container) corev1.PullPolicy {
	if c.ImagePullPolicy != "" {
		return c.ImagePullPolicy
	}
	if strings.Contains(c.Image, "@") {
		return corev1.PullIfNotPresent
	}
	name := c.Image[strings.LastIndexByte(c.Image, '/')+1:]
	if !strings.Contains(name, ":") || strings.HasSuffix(name, ":latest") {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// errImageNotReady: the container cannot start yet; its waiting reason
// says why.
var errImageNotReady = errors.New("image not ready")

// ensureImage applies imagePullPolicy with kubelet's events and waiting
// reasons: Pulling/Pulled, "already present on machine", ErrImagePull then
// ImagePullBackOff with back-off, and ErrImageNeverPull. With Always a
// failed pull does not fall back to a local copy.
func (a *Agent) ensureImage(ctx context.Context, pod *corev1.Pod, st *podState, c corev1.Container) error {
	_, err := a.cfg.Runtime.GetImage(ctx, c.Image)
	present := err == nil
	policy := pullPolicy(c)
	switch {
	case present && policy != corev1.PullAlways:
		a.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", c.Image)
		return nil
	case !present && policy == corev1.PullNever:
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
		st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: msg}
		a.recorder.Event(containerRef(pod, c.Name), corev1.EventTypeWarning, "ErrImageNeverPull", msg)
		return errImageNotReady
	}
	key := st.uid + "/" + c.Image
	now := time.Now()
	if b, held := a.pullBackoffs.inBackoff(key, now); held {
		st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff",
			Message: fmt.Sprintf("Back-off pulling image %q: ErrImagePull: %s", c.Image, b.lastErr)}
		a.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeNormal, "BackOff", "Back-off pulling image %q", c.Image)
		a.recorder.Event(containerRef(pod, c.Name), corev1.EventTypeWarning, "Failed", "Error: ImagePullBackOff")
		a.queue.AddAfter(st.key, b.until.Sub(now))
		return errImageNotReady
	}
	a.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	begin := time.Now()
	img, err := a.pull(ctx, pod, c.Image)
	if err != nil {
		msg := fmt.Sprintf("Failed to pull image %q: %v", c.Image, err)
		a.pullBackoffs.failed(key, time.Now(), msg)
		st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: msg}
		a.recorder.Event(containerRef(pod, c.Name), corev1.EventTypeWarning, "Failed", msg)
		a.recorder.Event(containerRef(pod, c.Name), corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
		// The next sync shows the back-off, like kubelet's next pod sync.
		a.queue.AddAfter(st.key, time.Second)
		return errImageNotReady
	}
	a.pullBackoffs.succeeded(key)
	took := time.Since(begin).Truncate(time.Millisecond)
	a.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %v (%v including waiting). Image size: %d bytes.",
		c.Image, took, took, img.Size)
	return nil
}

// pull pulls image with the pod's imagePullSecrets (the ServiceAccount's
// are copied into the pod at admission, like upstream) and the cluster's
// insecure registries.
func (a *Agent) pull(ctx context.Context, pod *corev1.Pod, image string) (runtime.Image, error) {
	var k keyring
	var missing []string
	for _, ref := range pod.Spec.ImagePullSecrets {
		s, err := a.cfg.Client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err == nil {
			err = k.add(s)
		}
		if err != nil {
			a.log.Info("image pull secret", "pod", pod.Namespace+"/"+pod.Name, "secret", ref.Name, "err", err)
			missing = append(missing, fmt.Sprintf("%s/%s", pod.Namespace, ref.Name))
		}
	}
	if len(missing) > 0 {
		a.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedToRetrieveImagePullSecret",
			"Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", strings.Join(missing, ", "))
	}
	ctx, cancel := context.WithTimeout(ctx, pullTimeout)
	defer cancel()
	return a.cfg.Runtime.Pull(ctx, image, runtime.PullOptions{Auth: k.lookup(image), Insecure: a.cfg.InsecureRegistries})
}
