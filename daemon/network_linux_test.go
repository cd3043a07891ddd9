//go:build linux

package daemon

import "testing"

func TestNodeNames(t *testing.T) {
	for i := 1; i <= maxNodes; i++ {
		if got := nodeIndex("dev", NodeName("dev", i)); got != i {
			t.Errorf("nodeIndex(NodeName(%d)) = %d", i, got)
		}
	}
	for _, name := range []string{"dev-m01", "dev-m1", "dev-m33", "other", "dev-mxx", "dev-m002", ""} {
		if got := nodeIndex("dev", name); got != 0 {
			t.Errorf("nodeIndex(%q) = %d, want 0", name, got)
		}
	}
	if got := podCIDROf(3).String(); got != "10.244.2.0/24" {
		t.Errorf("podCIDROf(3) = %s", got)
	}
}
