package apiserver

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"

	"github.com/nanokube/nanokube/store"
)

// The annotation that marks the default StorageClass and the finalizers of
// StorageObjectInUseProtection.
const (
	annDefaultStorageClass = "storageclass.kubernetes.io/is-default-class"
	finalizerPVCProtection = "kubernetes.io/pvc-protection"
	finalizerPVProtection  = "kubernetes.io/pv-protection"
)

// admitClaim is the DefaultStorageClass admission plugin (a claim that
// names no class gets the default one; with several defaults the newest
// wins, like upstream) and StorageObjectInUseProtection for claims.
func (s *Server) admitClaim(pvc *corev1.PersistentVolumeClaim) error {
	addFinalizer(&pvc.Finalizers, finalizerPVCProtection)
	if pvc.Spec.StorageClassName != nil || pvc.Annotations[corev1.BetaStorageClassAnnotation] != "" {
		return nil
	}
	def, err := s.defaultStorageClass()
	if err != nil || def == "" {
		return err
	}
	pvc.Spec.StorageClassName = &def
	return nil
}

// defaultStorageClass is the name of the default class ("" for none).
func (s *Server) defaultStorageClass() (string, error) {
	res := s.resource(storagev1.SchemeGroupVersion, "storageclasses")
	if res == nil {
		return "", nil
	}
	kvs, _, _, err := s.store.List(keyPrefix(res, ""), store.ListOptions{})
	if err != nil {
		return "", err
	}
	var defaults []*storagev1.StorageClass
	for _, kv := range kvs {
		obj, err := decodeStored(res, kv)
		if err != nil {
			return "", err
		}
		if sc := obj.(*storagev1.StorageClass); sc.Annotations[annDefaultStorageClass] == "true" {
			defaults = append(defaults, sc)
		}
	}
	if len(defaults) == 0 {
		return "", nil
	}
	sort.Slice(defaults, func(i, j int) bool {
		ti, tj := defaults[i].CreationTimestamp, defaults[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return tj.Before(&ti)
		}
		return defaults[i].Name < defaults[j].Name
	})
	return defaults[0].Name, nil
}

func addFinalizer(fs *[]string, f string) {
	for _, x := range *fs {
		if x == f {
			return
		}
	}
	*fs = append(*fs, f)
}
