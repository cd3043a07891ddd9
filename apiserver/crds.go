package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/nanokube/nanokube/apiserver/customresource"
	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

// crdController serves the custom resources of the stored CRDs: it keeps
// the catalog and the OpenAPI documents in step with them, accepts their
// names (NamesAccepted, Established) and, when one is deleted, deletes its
// custom resources before it lets the CRD go. It reads the store's watch.
type crdController struct {
	s        *Server
	res      *registry.Resource // customresourcedefinitions
	crds     map[string]*apiextensionsv1.CustomResourceDefinition
	cleaning map[string]bool
	done     chan string
}

func newCRDController(s *Server) *crdController {
	return &crdController{
		s:        s,
		res:      s.resource(apiextensionsv1.SchemeGroupVersion, "customresourcedefinitions"),
		crds:     map[string]*apiextensionsv1.CustomResourceDefinition{},
		cleaning: map[string]bool{},
		done:     make(chan string),
	}
}

// sync serves the CRDs stored now and returns the revision to watch from.
func (c *crdController) sync() (int64, error) {
	if c.res == nil {
		return 0, nil
	}
	kvs, rev, _, err := c.s.store.List(keyPrefix(c.res, ""), store.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("list CRDs: %w", err)
	}
	for _, kv := range kvs {
		obj, err := decodeStored(c.res, kv)
		if err != nil {
			return 0, err
		}
		crd := obj.(*apiextensionsv1.CustomResourceDefinition)
		c.crds[crd.Name] = crd
	}
	for _, name := range sortedKeys(c.crds) {
		c.serve(c.crds[name])
	}
	return rev, nil
}

// run follows CRD changes until ctx ends.
func (c *crdController) run(ctx context.Context, from int64) error {
	if c.res == nil {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		w, err := c.s.store.Watch(gctx, keyPrefix(c.res, ""), from)
		if err != nil {
			return fmt.Errorf("watch CRDs: %w", err)
		}
		defer w.Stop()
		// Terminating CRDs found at start are cleaned up too.
		for _, name := range sortedKeys(c.crds) {
			c.startCleanup(g, gctx, c.crds[name])
		}
		for {
			select {
			case <-gctx.Done():
				return nil
			case name := <-c.done:
				delete(c.cleaning, name)
				if crd := c.crds[name]; crd != nil {
					c.startCleanup(g, gctx, crd) // deleted again meanwhile
				}
			case ev, ok := <-w.Events():
				if !ok {
					if err := w.Err(); err != nil && gctx.Err() == nil {
						return fmt.Errorf("watch CRDs: %w", err)
					}
					return nil
				}
				obj, err := decodeStored(c.res, ev.KV)
				if err != nil {
					c.s.log.Error("decode CRD", "key", ev.KV.Key, "err", err)
					continue
				}
				crd := obj.(*apiextensionsv1.CustomResourceDefinition)
				if ev.Type == store.Delete {
					delete(c.crds, crd.Name)
					c.s.catalog.setCustom(crd.Name, nil)
					c.publishOpenAPI()
					continue
				}
				c.crds[crd.Name] = crd
				c.serve(crd)
				c.startCleanup(g, gctx, crd)
			}
		}
	})
	return g.Wait()
}

func (c *crdController) startCleanup(g *errgroup.Group, ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition) {
	if crd.DeletionTimestamp == nil || !slices.Contains(crd.Finalizers, registry.CRDCleanupFinalizer) || c.cleaning[crd.Name] {
		return
	}
	c.cleaning[crd.Name] = true
	crd = crd.DeepCopy()
	g.Go(func() error {
		if err := c.cleanup(ctx, crd); err != nil && ctx.Err() == nil {
			c.s.log.Error("delete custom resources", "crd", crd.Name, "err", err)
		}
		select {
		case c.done <- crd.Name:
		case <-ctx.Done():
		}
		return nil
	})
}

// serve puts a CRD's versions in the catalog (when its names are
// accepted) and writes the status conditions that say so.
func (c *crdController) serve(crd *apiextensionsv1.CustomResourceDefinition) {
	want := crd.Status.DeepCopy()
	accepted, reason, msg := c.namesAccepted(crd)
	now := metav1.Now()
	if accepted {
		want.AcceptedNames = crd.Spec.Names
		setCRDCondition(want, apiextensionsv1.NamesAccepted, apiextensionsv1.ConditionTrue, "NoConflicts", "no conflicts found", now)
	} else {
		setCRDCondition(want, apiextensionsv1.NamesAccepted, apiextensionsv1.ConditionFalse, reason, msg, now)
	}
	if crd.DeletionTimestamp != nil {
		setCRDCondition(want, apiextensionsv1.Terminating, apiextensionsv1.ConditionTrue, "InstanceDeletionInProgress", "CustomResource deletion is in progress", now)
	}
	established := want.AcceptedNames.Plural != ""
	served := crd.DeepCopy()
	served.Status = *want
	rs, err := customresource.Resources(served)
	if err != nil {
		c.s.log.Error("serve CRD", "crd", crd.Name, "err", err)
		established = false
	}
	if established {
		c.s.catalog.setCustom(crd.Name, rs)
		setCRDCondition(want, apiextensionsv1.Established, apiextensionsv1.ConditionTrue, "InitialNamesAccepted", "the initial names have been accepted", now)
	} else {
		c.s.catalog.setCustom(crd.Name, nil)
	}
	c.publishOpenAPI()
	for _, v := range crd.Spec.Versions {
		if v.Storage && !slices.Contains(want.StoredVersions, v.Name) {
			want.StoredVersions = append(want.StoredVersions, v.Name)
		}
	}
	if crdStatusEqual(&crd.Status, want) {
		return
	}
	next := crd.DeepCopy()
	next.Status = *want
	if _, _, err := c.s.updateObject(internalRequest(), c.res, &requestInfo{verb: "update", res: c.res, name: crd.Name, subresource: "status"}, next); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		c.s.log.Error("write CRD status", "crd", crd.Name, "err", err)
	}
	// A conflict means a newer version is on its way through the watch.
}

// namesAccepted checks the CRD's names against the other CRDs of its group.
func (c *crdController) namesAccepted(crd *apiextensionsv1.CustomResourceDefinition) (bool, string, string) {
	n := crd.Spec.Names
	for _, name := range sortedKeys(c.crds) {
		other := c.crds[name]
		if other.Name == crd.Name || other.Spec.Group != crd.Spec.Group {
			continue
		}
		on := other.Status.AcceptedNames
		resources := sets.New(on.Plural, on.Singular).Insert(on.ShortNames...)
		resources.Delete("")
		switch {
		case resources.Has(n.Plural):
			return false, "PluralConflict", fmt.Sprintf("%q is already in use", n.Plural)
		case resources.Has(n.Singular):
			return false, "SingularConflict", fmt.Sprintf("%q is already in use", n.Singular)
		case on.Kind != "" && on.Kind == n.Kind:
			return false, "KindConflict", fmt.Sprintf("%q is already in use", n.Kind)
		case on.ListKind != "" && on.ListKind == n.ListKind:
			return false, "ListKindConflict", fmt.Sprintf("%q is already in use", n.ListKind)
		}
		for _, sn := range n.ShortNames {
			if resources.Has(sn) {
				return false, "ShortNamesConflict", fmt.Sprintf("%q is already in use", sn)
			}
		}
	}
	return true, "", ""
}

func (c *crdController) publishOpenAPI() {
	if h, ok := c.s.cfg.OpenAPI.(interface{ SetCustom([]*registry.Resource) }); ok {
		h.SetCustom(c.s.catalog.get().custom)
	}
}

// cleanup deletes every custom resource of a deleted CRD (honouring their
// finalizers), waits until they are gone and then removes the CRD's
// cleanup finalizer.
func (c *crdController) cleanup(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition) error {
	served, _ := customresource.Resources(crd)
	var res *registry.Resource
	for _, r := range served {
		if res == nil || r.GroupVersion.Version == r.Custom.StorageVersion {
			res = r
		}
	}
	prefix := "/registry/" + crd.Spec.Group + "/" + crd.Spec.Names.Plural + "/"
	req := internalRequest()
	for {
		kvs, rev, _, err := c.s.store.List(prefix, store.ListOptions{})
		if err != nil {
			return err
		}
		if len(kvs) == 0 {
			break
		}
		for _, kv := range kvs {
			if res == nil {
				if _, err := c.s.store.Delete(kv.Key, kv.ModRev); err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
					return err
				}
				continue
			}
			obj, err := decodeStored(res, kv)
			if err != nil {
				return err
			}
			m := obj.(interface {
				GetNamespace() string
				GetName() string
				GetDeletionTimestamp() *metav1.Time
			})
			if m.GetDeletionTimestamp() != nil {
				continue
			}
			if _, _, err := c.s.deleteObject(req, res, m.GetNamespace(), m.GetName(), &metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return err
			}
		}
		// Wait for the next change under the prefix (finalizers going away).
		w, err := c.s.store.Watch(ctx, prefix, rev)
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			w.Stop()
			return ctx.Err()
		case <-w.Events():
		}
		w.Stop()
	}
	for attempt := 0; attempt < 5; attempt++ {
		obj, _, err := c.s.getObject(c.res, "", crd.Name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		cur := obj.(*apiextensionsv1.CustomResourceDefinition)
		cur.Finalizers = slices.DeleteFunc(cur.Finalizers, func(f string) bool { return f == registry.CRDCleanupFinalizer })
		setCRDCondition(&cur.Status, apiextensionsv1.Terminating, apiextensionsv1.ConditionTrue, "InstanceDeletionCompleted", "removed all instances", metav1.Now())
		_, _, err = c.s.updateObject(req, c.res, &requestInfo{verb: "update", res: c.res, name: crd.Name}, cur)
		if apierrors.IsConflict(err) {
			continue
		}
		return err
	}
	return fmt.Errorf("remove the finalizer of CRD %s: too many conflicts", crd.Name)
}

func setCRDCondition(st *apiextensionsv1.CustomResourceDefinitionStatus, typ apiextensionsv1.CustomResourceDefinitionConditionType, status apiextensionsv1.ConditionStatus, reason, msg string, now metav1.Time) {
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != typ {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message = status, reason, msg
		return
	}
	st.Conditions = append(st.Conditions, apiextensionsv1.CustomResourceDefinitionCondition{Type: typ, Status: status, Reason: reason, Message: msg, LastTransitionTime: now})
}

func crdStatusEqual(a, b *apiextensionsv1.CustomResourceDefinitionStatus) bool {
	if len(a.Conditions) != len(b.Conditions) || !slices.Equal(a.StoredVersions, b.StoredVersions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message {
			return false
		}
	}
	an, bn := a.AcceptedNames, b.AcceptedNames
	return an.Plural == bn.Plural && an.Singular == bn.Singular && an.Kind == bn.Kind && an.ListKind == bn.ListKind &&
		slices.Equal(an.ShortNames, bn.ShortNames) && slices.Equal(an.Categories, bn.Categories)
}

// internalRequest stands for the server's own writes (no dry run, no user).
func internalRequest() *http.Request {
	return &http.Request{Method: http.MethodPut, URL: &url.URL{Path: "/internal"}, Header: http.Header{}}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, strings.Compare)
	return out
}
