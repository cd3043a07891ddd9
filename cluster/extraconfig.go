package cluster

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// ExtraConfig keys: component settings given as minikube's
// --extra-config=component.key=value, each an upstream flag.
const (
	NodeMonitorGracePeriod    = "controller-manager.node-monitor-grace-period"
	HPASyncPeriod             = "controller-manager.horizontal-pod-autoscaler-sync-period"
	HPADownscaleStabilization = "controller-manager.horizontal-pod-autoscaler-downscale-stabilization"
)

var extraConfigKeys = []string{NodeMonitorGracePeriod, HPASyncPeriod, HPADownscaleStabilization}

// ParseExtraConfig checks --extra-config values (component.key=value; all
// supported keys take a duration).
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
		known := false
		for _, k := range extraConfigKeys {
			known = known || k == key
		}
		if !known {
			keys := append([]string{}, extraConfigKeys...)
			sort.Strings(keys)
			return nil, fmt.Errorf("unknown --extra-config key %q: nanokube supports %s", key, strings.Join(keys, ", "))
		}
		if d, err := time.ParseDuration(val); err != nil || d <= 0 {
			return nil, fmt.Errorf("invalid --extra-config %q: %s takes a positive duration like 20s", v, key)
		}
		out[key] = val
	}
	return out, nil
}

// ExtraDuration is the duration set for key, or 0.
func (c Config) ExtraDuration(key string) time.Duration {
	d, _ := time.ParseDuration(c.ExtraConfig[key])
	return d
}
