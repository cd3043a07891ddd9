package apiserver

import (
	"sort"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/nanokube/nanokube/store"
)

// ingressClassAnnotation is the deprecated way to pick a class; an Ingress
// that sets it is left alone, as upstream does.
const ingressClassAnnotation = "kubernetes.io/ingress.class"

// admitDefaultIngressClass is kube-apiserver's DefaultIngressClass plugin:
// a new Ingress without spec.ingressClassName (and without the deprecated
// annotation) gets the IngressClass marked
// ingressclass.kubernetes.io/is-default-class=true; of several such
// classes the newest wins (ties: the first name), like upstream since 1.27.
func (s *Server) admitDefaultIngressClass(ing *networkingv1.Ingress) error {
	if ing.Spec.IngressClassName != nil {
		return nil
	}
	if _, ok := ing.Annotations[ingressClassAnnotation]; ok {
		return nil
	}
	res := s.resource(networkingv1.SchemeGroupVersion, "ingressclasses")
	if res == nil {
		return nil
	}
	kvs, _, _, err := s.store.List(keyPrefix(res, ""), store.ListOptions{})
	if err != nil {
		return err
	}
	var list []*networkingv1.IngressClass
	for _, kv := range kvs {
		obj, err := decodeStored(res, kv)
		if err != nil {
			return err
		}
		list = append(list, obj.(*networkingv1.IngressClass))
	}
	if def := defaultIngressClass(list); def != nil {
		name := def.Name
		ing.Spec.IngressClassName = &name
	}
	return nil
}

// defaultIngressClass is the newest class marked as the default (ties:
// the first name), or nil.
func defaultIngressClass(list []*networkingv1.IngressClass) *networkingv1.IngressClass {
	var defaults []*networkingv1.IngressClass
	for _, ic := range list {
		if ic.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true" {
			defaults = append(defaults, ic)
		}
	}
	if len(defaults) == 0 {
		return nil
	}
	sort.Slice(defaults, func(i, j int) bool {
		ti, tj := defaults[i].CreationTimestamp, defaults[j].CreationTimestamp
		if ti.Equal(&tj) {
			return defaults[i].Name < defaults[j].Name
		}
		return tj.Before(&ti)
	})
	return defaults[0]
}
