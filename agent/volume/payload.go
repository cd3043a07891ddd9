package volume

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// ConfigMapPayload is kubelet's configmap MakePayload: every key of Data
// and BinaryData (or only the items), with the item's mode or defaultMode.
// cm is nil for a missing optional ConfigMap.
func ConfigMapPayload(items []corev1.KeyToPath, cm *corev1.ConfigMap, defaultMode *int32, optional bool) (map[string]FileProjection, error) {
	if cm == nil {
		return map[string]FileProjection{}, nil
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyPayload(items, data, defaultMode, optional, "configmap references non-existent config key: %s")
}

// SecretPayload is kubelet's secret MakePayload.
func SecretPayload(items []corev1.KeyToPath, s *corev1.Secret, defaultMode *int32, optional bool) (map[string]FileProjection, error) {
	if s == nil {
		return map[string]FileProjection{}, nil
	}
	return keyPayload(items, s.Data, defaultMode, optional, "references non-existent secret key: %s")
}

func keyPayload(items []corev1.KeyToPath, data map[string][]byte, defaultMode *int32, optional bool, missing string) (map[string]FileProjection, error) {
	if defaultMode == nil {
		return nil, errors.New("no defaultMode used, not even the default value for it")
	}
	out := map[string]FileProjection{}
	if len(items) == 0 {
		for k, v := range data {
			out[k] = FileProjection{Data: v, Mode: *defaultMode}
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf(missing, it.Key)
		}
		mode := *defaultMode
		if it.Mode != nil {
			mode = *it.Mode
		}
		out[it.Path] = FileProjection{Data: v, Mode: mode}
	}
	return out, nil
}

// Resources gives a container's resource values to the downward API:
// limits that are unset read as the node's allocatable amount.
type Resources struct {
	Allocatable corev1.ResourceList
}

// DownwardAPIPayload is kubelet's downwardapi CollectData.
func DownwardAPIPayload(items []corev1.DownwardAPIVolumeFile, pod *corev1.Pod, res Resources, defaultMode *int32) (map[string]FileProjection, error) {
	if defaultMode == nil {
		return nil, errors.New("no defaultMode used, not even the default value for it")
	}
	out := map[string]FileProjection{}
	var errs []error
	for _, it := range items {
		fp := FileProjection{Mode: *defaultMode}
		if it.Mode != nil {
			fp.Mode = *it.Mode
		}
		switch {
		case it.FieldRef != nil:
			v, err := FieldValue(pod, it.FieldRef.FieldPath)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			fp.Data = []byte(v)
		case it.ResourceFieldRef != nil:
			c := findContainer(pod, it.ResourceFieldRef.ContainerName)
			if c == nil {
				errs = append(errs, fmt.Errorf("container %s not found", it.ResourceFieldRef.ContainerName))
				continue
			}
			v, err := ResourceValue(it.ResourceFieldRef, c, res)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			fp.Data = []byte(v)
		}
		out[filepath.Clean(it.Path)] = fp
	}
	return out, errors.Join(errs...)
}

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for _, group := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range group {
			if group[i].Name == name {
				return &group[i]
			}
		}
	}
	return nil
}

// FieldValue is kubelet's ExtractFieldPathAsString for the metadata a
// downward API volume may project.
func FieldValue(pod *corev1.Pod, path string) (string, error) {
	if k, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	switch path {
	case "metadata.annotations":
		return FormatMap(pod.Annotations), nil
	case "metadata.labels":
		return FormatMap(pod.Labels), nil
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %v", path)
}

// subscript splits "metadata.labels['key']".
func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"['")
	if !ok || !strings.HasSuffix(rest, "']") {
		return "", false
	}
	return strings.TrimSuffix(rest, "']"), true
}

// FormatMap is kubelet's labels/annotations file format: key="value" lines
// in key order, without a final newline.
func FormatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%v=%q", k, m[k])
	}
	return b.String()
}

// ResourceValue is kubelet's ExtractContainerResourceValue (with unset
// limits read as node allocatable): the value divided by the divisor,
// rounded up.
func ResourceValue(fs *corev1.ResourceFieldSelector, c *corev1.Container, res Resources) (string, error) {
	divisor := resource.MustParse("1")
	if !fs.Divisor.IsZero() {
		divisor = fs.Divisor
	}
	limit := func(name corev1.ResourceName) resource.Quantity {
		if q, ok := c.Resources.Limits[name]; ok {
			return q
		}
		return res.Allocatable[name]
	}
	request := func(name corev1.ResourceName) resource.Quantity {
		if q, ok := c.Resources.Requests[name]; ok {
			return q
		}
		if q, ok := c.Resources.Limits[name]; ok {
			return q // the API defaults requests to limits
		}
		return resource.Quantity{}
	}
	var q resource.Quantity
	cpu := false
	switch fs.Resource {
	case "limits.cpu":
		q, cpu = limit(corev1.ResourceCPU), true
	case "limits.memory":
		q = limit(corev1.ResourceMemory)
	case "limits.ephemeral-storage":
		q = limit(corev1.ResourceEphemeralStorage)
	case "requests.cpu":
		q, cpu = request(corev1.ResourceCPU), true
	case "requests.memory":
		q = request(corev1.ResourceMemory)
	case "requests.ephemeral-storage":
		q = request(corev1.ResourceEphemeralStorage)
	default:
		if name, ok := strings.CutPrefix(fs.Resource, "requests."); ok && strings.HasPrefix(name, corev1.ResourceHugePagesPrefix) {
			q = request(corev1.ResourceName(name))
		} else if name, ok := strings.CutPrefix(fs.Resource, "limits."); ok && strings.HasPrefix(name, corev1.ResourceHugePagesPrefix) {
			q = limit(corev1.ResourceName(name))
		} else {
			return "", fmt.Errorf("unsupported container resource : %v", fs.Resource)
		}
	}
	if cpu {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
}
