package apiserver

import (
	"sort"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"

	"github.com/nanokube/nanokube/apiserver/registry"
)

// catalog is the set of served resources: the built-in ones, fixed at
// start, and the custom resources of the established CRDs, which change
// at run time. Readers take an immutable snapshot without locking.
type catalog struct {
	builtin []*registry.Resource
	mu      sync.Mutex                      // serialises writers
	custom  map[string][]*registry.Resource // CRD name → its served versions
	snap    atomic.Pointer[catalogSnapshot]
}

type catalogSnapshot struct {
	byGV   map[schema.GroupVersion]map[string]*registry.Resource // gv → plural
	groups []groupInfo
	custom []*registry.Resource
	// fieldManagers of custom resources, built on first apply; a new
	// snapshot starts without them (the schema may have changed).
	fmMu sync.Mutex
	fm   map[managerKey]*managedfields.FieldManager
}

func newCatalog(builtin []*registry.Resource) *catalog {
	c := &catalog{builtin: builtin, custom: map[string][]*registry.Resource{}}
	c.publish()
	return c
}

func (c *catalog) publish() {
	names := make([]string, 0, len(c.custom))
	for n := range c.custom {
		names = append(names, n)
	}
	sort.Strings(names)
	all := append([]*registry.Resource{}, c.builtin...)
	var custom []*registry.Resource
	for _, n := range names {
		custom = append(custom, c.custom[n]...)
	}
	all = append(all, custom...)
	snap := &catalogSnapshot{byGV: map[schema.GroupVersion]map[string]*registry.Resource{}, custom: custom,
		fm: map[managerKey]*managedfields.FieldManager{}}
	for _, r := range all {
		if snap.byGV[r.GroupVersion] == nil {
			snap.byGV[r.GroupVersion] = map[string]*registry.Resource{}
		}
		if _, taken := snap.byGV[r.GroupVersion][r.Plural]; taken {
			continue // a built-in wins over a custom resource of the same name
		}
		snap.byGV[r.GroupVersion][r.Plural] = r
	}
	snap.groups = buildGroups(all)
	c.snap.Store(snap)
}

// setCustom replaces the served versions of one CRD (nil: none).
func (c *catalog) setCustom(crd string, rs []*registry.Resource) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(rs) == 0 {
		if _, ok := c.custom[crd]; !ok {
			return
		}
		delete(c.custom, crd)
	} else {
		c.custom[crd] = rs
	}
	c.publish()
}

func (c *catalog) get() *catalogSnapshot { return c.snap.Load() }

// resource finds a served resource.
func (s *Server) resource(gv schema.GroupVersion, plural string) *registry.Resource {
	return s.catalog.get().byGV[gv][plural]
}
