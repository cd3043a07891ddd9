package network

import (
	"fmt"
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// manyInput is n ClusterIP services with one endpoint each; every
// service also reaches the endpoint 10.244.9.9 (a hairpin element all
// of them share). Service changed has its first endpoint unready.
func manyInput(n, changed int) ProxyInput {
	in := ProxyInput{Node: "n1", ClusterCIDR: testCIDR, Slices: map[string][]*discoveryv1.EndpointSlice{}}
	for i := range n {
		name := fmt.Sprintf("s%04d", i)
		in.Services = append(in.Services, testService(name, func(s *corev1.Service) {
			s.Spec.ClusterIP = fmt.Sprintf("10.96.%d.%d", 1+i/250, 1+i%250)
		}))
		in.Slices["default/"+name] = []*discoveryv1.EndpointSlice{testSlice(name, 8080,
			testEP{ip: fmt.Sprintf("10.244.%d.%d", i/250, 2+i%250), node: "n1", ready: i != changed}, testEP{ip: "10.244.9.9", node: "n1", ready: true})}
	}
	return in
}

// only is the part of in for the services named.
func only(in ProxyInput, names ...string) ProxyInput {
	out := in
	out.Services = nil
	for _, s := range in.Services {
		for _, n := range names {
			if s.Namespace+"/"+s.Name == n {
				out.Services = append(out.Services, s)
			}
		}
	}
	return out
}

// applyDelta is what a sync of d does to the table state r.
func applyDelta(r *ProxyRules, d ProxyDelta) {
	for name := range d.Have.Chains {
		delete(r.Chains, name)
	}
	maps.Copy(r.Chains, d.Want.Chains)
	for name := range d.Have.Sets {
		delete(r.Sets, name)
	}
	maps.Copy(r.Sets, d.Want.Sets)
	for name, e := range d.Have.Elems {
		if !isSharedMap(name) {
			delete(r.Elems, name)
			continue
		}
		for k := range e {
			delete(r.Elems[name], k)
		}
	}
	for name, e := range d.Want.Elems {
		if !isSharedMap(name) {
			r.Elems[name] = e
			continue
		}
		maps.Copy(r.Elems[name], e)
	}
}

// TestProxyCache: an incremental sync with one changed service out of
// many renders only that one and changes only its part of the table;
// the result equals a full render.
func TestProxyCache(t *testing.T) {
	in := manyInput(1000, -1)
	c, full := NewProxyCache(in)
	if got, want := dump(full), dump(RenderProxy(in)); got != want {
		t.Fatalf("full render through the cache differs from RenderProxy:\n%s\nwant:\n%s", got, want)
	}
	if c.Chains() != len(full.Chains) {
		t.Errorf("cache counts %d chains, the table has %d", c.Chains(), len(full.Chains))
	}

	// One endpoint of s0500 goes unready.
	next := manyInput(1000, 500)
	d := c.Update(only(next, "default/s0500"), []string{"default/s0500"})
	if d.Rendered != 1 {
		t.Errorf("rendered %d services, want 1", d.Rendered)
	}
	if len(d.Want.Chains) != 1 || len(d.Have.Chains) != 1 {
		t.Errorf("delta has %d/%d chains, want 1/1", len(d.Have.Chains), len(d.Want.Chains))
	}
	n := 0
	for _, e := range d.Want.Elems {
		n += len(e)
	}
	for _, e := range d.Have.Elems {
		n += len(e)
	}
	if n != 1 { // the hairpin element of the unready endpoint goes
		t.Errorf("delta has %d elements, want 1: %v / %v", n, d.Have.Elems, d.Want.Elems)
	}
	applyDelta(full, d)
	if got, want := dump(full), dump(RenderProxy(next)); got != want {
		t.Fatalf("after the update the table differs from a full render:\n%s\nwant:\n%s", got, want)
	}

	// The service goes away, another comes back: the shared hairpin
	// element stays while any service holds it.
	gone := only(next)
	gone.Services = nil
	for _, s := range next.Services {
		if s.Name != "s0500" && s.Name != "s0001" {
			gone.Services = append(gone.Services, s)
		}
	}
	d = c.Update(only(next), []string{"default/s0500", "default/s0001"})
	applyDelta(full, d)
	if got, want := dump(full), dump(RenderProxy(gone)); got != want {
		t.Fatalf("after deleting two services the table differs from a full render:\n%s\nwant:\n%s", got, want)
	}
	if _, ok := full.Elems[setHairpin]["10.244.9.9 . 10.244.9.9"]; !ok {
		t.Error("the shared hairpin element went with one of its services")
	}
	if c.Chains() != len(full.Chains) {
		t.Errorf("cache counts %d chains, the table has %d", c.Chains(), len(full.Chains))
	}
}

// BenchmarkProxyCacheUpdate is the Go side of an incremental sync of one
// changed service: it should not grow with the number of services.
func BenchmarkProxyCacheUpdate(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c, _ := NewProxyCache(manyInput(n, -1))
			ins := []ProxyInput{only(manyInput(n, n/2), fmt.Sprintf("default/s%04d", n/2)), only(manyInput(n, -1), fmt.Sprintf("default/s%04d", n/2))}
			key := []string{fmt.Sprintf("default/s%04d", n/2)}
			b.ResetTimer()
			for i := range b.N {
				c.Update(ins[i%2], key)
			}
		})
	}
}
