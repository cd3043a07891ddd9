package network

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ProxyCache holds the rules rendered for each service at the last
// sync, like kube-proxy's change trackers: an incremental sync renders
// only the services whose Service or EndpointSlices changed and diffs
// only their chains, sets and elements, so its cost follows what
// changed, not how many services there are.
type ProxyCache struct {
	podCIDR string
	svcs    map[string]*ProxyRules // "namespace/name" → its rules
	// owners of the elements of the shared maps: map → key → service →
	// value. Several services may hold one key (a hairpin pair of an
	// endpoint of two services); the element stays while one does.
	owners map[string]map[string]map[string]string
	chains int
}

// ProxyDelta is what an incremental sync changes: Have is the part of
// the table it replaces (as applied), Want what replaces it.
type ProxyDelta struct {
	Have, Want *ProxyRules
	// Rendered is how many services were rendered.
	Rendered int
}

// NewProxyCache renders every service of in (a full sync) and returns
// the cache and the whole table's rules.
func NewProxyCache(in ProxyInput) (*ProxyCache, *ProxyRules) {
	c := &ProxyCache{podCIDR: newProxyRules(in).PodCIDR, svcs: map[string]*ProxyRules{}, owners: map[string]map[string]map[string]string{}}
	for _, s := range in.Services {
		key := s.Namespace + "/" + s.Name
		r := newProxyRules(in)
		r.addService(in, s)
		c.svcs[key] = r
		c.own(key, r, nil)
		c.chains += len(r.Chains)
	}
	all := newProxyRules(in)
	for _, r := range c.svcs {
		for name, rules := range r.Chains {
			all.Chains[name] = rules
		}
		for name, t := range r.Sets {
			all.Sets[name] = t
		}
		for name, e := range r.Elems {
			if isSharedMap(name) {
				continue
			}
			all.Elems[name] = e
		}
	}
	for name, keys := range c.owners {
		for k := range keys {
			all.Elems[name][k], _ = c.value(name, k)
		}
	}
	return c, all
}

// Chains is the number of rendered chains of the whole table.
func (c *ProxyCache) Chains() int { return c.chains }

// Update renders the services named by changed again: in holds the
// current objects of those of them that exist (the others are gone) and
// their EndpointSlices. It returns the difference to apply; the cache
// holds the new state (drop it if the apply fails).
func (c *ProxyCache) Update(in ProxyInput, changed []string) ProxyDelta {
	cur := make(map[string]*corev1.Service, len(in.Services))
	for _, s := range in.Services {
		cur[s.Namespace+"/"+s.Name] = s
	}
	d := ProxyDelta{Have: &ProxyRules{PodCIDR: c.podCIDR, Chains: map[string][]Rule{}, Sets: map[string]int32{}, Elems: map[string]map[string]string{}},
		Want: newProxyRules(in)}
	for name := range d.Want.Elems {
		d.Have.Elems[name] = map[string]string{}
	}
	// before: the value of every touched shared element before the
	// update ("" and false: none).
	type elem struct{ m, k string }
	before := map[elem]*string{}
	touch := func(key string, r *ProxyRules) {
		for name, e := range r.Elems {
			if !isSharedMap(name) {
				continue
			}
			for k := range e {
				if _, ok := before[elem{name, k}]; !ok {
					var p *string
					if v, ok := c.value(name, k); ok {
						p = &v
					}
					before[elem{name, k}] = p
				}
			}
		}
	}
	done := map[string]bool{}
	for _, key := range changed {
		if done[key] {
			continue
		}
		done[key] = true
		old := c.svcs[key]
		var next *ProxyRules
		if s := cur[key]; s != nil {
			next = newProxyRules(in)
			next.addService(in, s)
			d.Rendered++
		}
		if old != nil {
			touch(key, old)
			c.own(key, nil, old)
			c.chains -= len(old.Chains)
			copyOwn(d.Have, old)
			delete(c.svcs, key)
		}
		if next != nil {
			touch(key, next)
			c.own(key, next, nil)
			c.chains += len(next.Chains)
			copyOwn(d.Want, next)
			c.svcs[key] = next
		}
	}
	for e, was := range before {
		now, ok := c.value(e.m, e.k)
		switch {
		case was != nil && ok && *was == now:
		default:
			if was != nil {
				d.Have.Elems[e.m][e.k] = *was
			}
			if ok {
				d.Want.Elems[e.m][e.k] = now
			}
		}
	}
	return d
}

// copyOwn copies a service's own chains, sets and endpoint maps into r.
func copyOwn(r, svc *ProxyRules) {
	for name, rules := range svc.Chains {
		r.Chains[name] = rules
	}
	for name, t := range svc.Sets {
		r.Sets[name] = t
	}
	for name, e := range svc.Elems {
		if !isSharedMap(name) {
			r.Elems[name] = e
		}
	}
}

// own records (add) or drops (del) a service's shared elements.
func (c *ProxyCache) own(key string, add, del *ProxyRules) {
	if del != nil {
		for name, e := range del.Elems {
			if !isSharedMap(name) {
				continue
			}
			for k := range e {
				o := c.owners[name][k]
				delete(o, key)
				if len(o) == 0 {
					delete(c.owners[name], k)
				}
			}
		}
	}
	if add != nil {
		for name, e := range add.Elems {
			if !isSharedMap(name) {
				continue
			}
			if c.owners[name] == nil {
				c.owners[name] = map[string]map[string]string{}
			}
			for k, v := range e {
				o := c.owners[name][k]
				if o == nil {
					o = map[string]string{}
					c.owners[name][k] = o
				}
				o[key] = v
			}
		}
	}
}

// value is a shared element's value: the one of the last of its
// services by "namespace/name", as a render in that order writes it.
func (c *ProxyCache) value(name, k string) (string, bool) {
	o := c.owners[name][k]
	if name == setHairpin || name == setMasqIPs || name == setMasqNodePorts {
		// Sets: no value to choose, whatever the number of owners (an
		// endpoint of many services).
		return "", len(o) > 0
	}
	best, v, ok := "", "", false
	for key, val := range o {
		if !ok || key > best {
			best, v, ok = key, val, true
		}
	}
	return v, ok
}

// isSharedMap reports whether elements of the map may come from several
// services (the fixed dispatch maps and sets; not an endpoint map).
func isSharedMap(name string) bool { return !strings.HasPrefix(name, epMapPrefix) }
