package cluster

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ExtraConfig keys: component settings given as minikube's
// --extra-config=component.key=value, each an upstream flag.
const (
	NodeMonitorGracePeriod    = "controller-manager.node-monitor-grace-period"
	HPASyncPeriod             = "controller-manager.horizontal-pod-autoscaler-sync-period"
	HPADownscaleStabilization = "controller-manager.horizontal-pod-autoscaler-downscale-stabilization"
	// Kubelet's image garbage collection flags.
	ImageGCHighThreshold = "kubelet.image-gc-high-threshold"
	ImageGCLowThreshold  = "kubelet.image-gc-low-threshold"
	ImageMinimumGCAge    = "kubelet.image-minimum-gc-age"
	// ImageGCPeriod is nanokube's own: kubelet fixes it at 5m.
	ImageGCPeriod = "kubelet.image-gc-period"
)

// valueKind is what an --extra-config key takes.
type valueKind int

const (
	positiveDuration valueKind = iota
	nonNegativeDuration
	percent
)

var extraConfigKeys = map[string]valueKind{
	NodeMonitorGracePeriod: positiveDuration, HPASyncPeriod: positiveDuration, HPADownscaleStabilization: positiveDuration,
	ImageGCHighThreshold: percent, ImageGCLowThreshold: percent, ImageMinimumGCAge: nonNegativeDuration, ImageGCPeriod: positiveDuration,
}

// ParseExtraConfig checks --extra-config values (component.key=value; each
// key takes a duration or a percentage like the upstream flag).
func ParseExtraConfig(values []string) (map[string]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, v := range values {
		key, val, ok := strings.Cut(v, "=")
		if !ok || !strings.Contains(key, ".") {
			return nil, fmt.Errorf("invalid --extra-config %q: use component.key=value, e.g. %s=20s", v, NodeMonitorGracePeriod)
		}
		kind, known := extraConfigKeys[key]
		if !known {
			keys := make([]string, 0, len(extraConfigKeys))
			for k := range extraConfigKeys {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			return nil, fmt.Errorf("unknown --extra-config key %q: nanokube supports %s", key, strings.Join(keys, ", "))
		}
		if err := checkValue(kind, val); err != nil {
			return nil, fmt.Errorf("invalid --extra-config %q: %s takes %w", v, key, err)
		}
		out[key] = val
	}
	// Kubelet's own check of the two thresholds.
	if hi, lo := out[ImageGCHighThreshold], out[ImageGCLowThreshold]; hi != "" || lo != "" {
		h, l := 85, 80
		if hi != "" {
			h, _ = strconv.Atoi(hi)
		}
		if lo != "" {
			l, _ = strconv.Atoi(lo)
		}
		if l >= h {
			return nil, fmt.Errorf("invalid --extra-config: %s (%d) must be less than %s (%d)", ImageGCLowThreshold, l, ImageGCHighThreshold, h)
		}
	}
	return out, nil
}

func checkValue(kind valueKind, val string) error {
	switch kind {
	case percent:
		if n, err := strconv.Atoi(val); err != nil || n < 0 || n > 100 {
			return errors.New("a percentage from 0 to 100")
		}
	case nonNegativeDuration:
		if d, err := time.ParseDuration(val); err != nil || d < 0 {
			return errors.New("a duration like 2m (0 allowed)")
		}
	default:
		if d, err := time.ParseDuration(val); err != nil || d <= 0 {
			return errors.New("a positive duration like 20s")
		}
	}
	return nil
}

// ExtraDuration is the duration set for key, or 0.
func (c Config) ExtraDuration(key string) time.Duration {
	d, _ := time.ParseDuration(c.ExtraConfig[key])
	return d
}

// ExtraInt is the integer set for key, and whether one is set.
func (c Config) ExtraInt(key string) (int, bool) {
	v, ok := c.ExtraConfig[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}
