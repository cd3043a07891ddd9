package scheduler

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func node(name string, cpu string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourcePods: resource.MustParse("110")}},
	}
}

func pod(name, node, cpu string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name)}, Spec: corev1.PodSpec{NodeName: node,
		Containers: []corev1.Container{{Name: "c"}}}}
	if cpu != "" {
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}
	}
	return p
}

// pick places pod on nodes already running pods, returning the node or the
// reasons counted per node like the scheduler's message.
func pick(pod *corev1.Pod, nodes []*corev1.Node, pods []*corev1.Pod) (string, map[string]int) {
	node, verdicts := place(pod, newSnapshot(nodes, pods, nil))
	reasons := map[string]int{}
	for _, v := range verdicts {
		reasons[v.reason]++
	}
	return node, reasons
}

func TestPick(t *testing.T) {
	cp := corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}
	nodes := []*corev1.Node{node("a", "2", map[string]string{"disk": "ssd"}), node("b", "2", nil), node("c", "2", nil, cp)}
	running := []*corev1.Pod{pod("busy", "a", "1500m")}
	cases := []struct {
		name    string
		pod     *corev1.Pod
		want    string
		reasons string
	}{
		{name: "least allocated wins", pod: pod("p", "", "500m"), want: "b"},
		{name: "node selector", pod: func() *corev1.Pod {
			p := pod("p", "", "")
			p.Spec.NodeSelector = map[string]string{"disk": "ssd"}
			return p
		}(), want: "a"},
		{name: "too big everywhere", pod: pod("p", "", "3"),
			reasons: "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu."},
		{name: "toleration opens the tainted node", pod: func() *corev1.Pod {
			p := pod("p", "", "1800m")
			p.Spec.Tolerations = []corev1.Toleration{{Key: cp.Key, Operator: corev1.TolerationOpExists}}
			return p
		}(), want: "b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, reasons := pick(c.pod, nodes, running)
			if got != c.want {
				t.Errorf("pick = %q (reasons %v), want %q", got, reasons, c.want)
			}
			if c.reasons != "" {
				if msg := histogram(len(nodes), reasons); !strings.HasPrefix(msg, c.reasons) {
					t.Errorf("message = %q, want prefix %q", msg, c.reasons)
				}
			}
		})
	}
}
