package registry

import (
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateVolumeSources checks the volume sources the node agent reads,
// with kube-apiserver's field paths and messages.
func validateVolumeSources(vols []corev1.Volume, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, v := range vols {
		vp := p.Index(i)
		switch {
		case v.HostPath != nil:
			hp := vp.Child("hostPath")
			if v.HostPath.Path == "" {
				errs = append(errs, field.Required(hp.Child("path"), ""))
			}
			if t := v.HostPath.Type; t != nil && !hostPathTypes[*t] {
				errs = append(errs, field.NotSupported(hp.Child("type"), *t, hostPathTypeNames))
			}
		case v.ConfigMap != nil:
			errs = append(errs, validateKeyToPaths(v.ConfigMap.Items, vp.Child("configMap", "items"))...)
		case v.Secret != nil:
			errs = append(errs, validateKeyToPaths(v.Secret.Items, vp.Child("secret", "items"))...)
		case v.DownwardAPI != nil:
			errs = append(errs, validateDownwardAPIFiles(v.DownwardAPI.Items, vp.Child("downwardAPI", "items"))...)
		case v.Projected != nil:
			for j, src := range v.Projected.Sources {
				sp := vp.Child("projected", "sources").Index(j)
				switch {
				case src.ServiceAccountToken != nil:
					tp := sp.Child("serviceAccountToken")
					if n := src.ServiceAccountToken.ExpirationSeconds; n != nil && *n < 600 {
						errs = append(errs, field.Invalid(tp.Child("expirationSeconds"), *n, "may not specify a duration less than 10 minutes"))
					} else if n != nil && *n > 1<<32 {
						errs = append(errs, field.Invalid(tp.Child("expirationSeconds"), *n, "may not specify a duration larger than 2^32 seconds"))
					}
					if src.ServiceAccountToken.Path == "" {
						errs = append(errs, field.Required(tp.Child("path"), ""))
					} else {
						errs = append(errs, validateLocalPath(src.ServiceAccountToken.Path, tp.Child("path"))...)
					}
				case src.ConfigMap != nil:
					errs = append(errs, validateKeyToPaths(src.ConfigMap.Items, sp.Child("configMap", "items"))...)
				case src.Secret != nil:
					errs = append(errs, validateKeyToPaths(src.Secret.Items, sp.Child("secret", "items"))...)
				case src.DownwardAPI != nil:
					errs = append(errs, validateDownwardAPIFiles(src.DownwardAPI.Items, sp.Child("downwardAPI", "items"))...)
				}
			}
		}
	}
	return errs
}

var (
	hostPathTypeNames = []string{"", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"}
	hostPathTypes     = map[corev1.HostPathType]bool{"": true, "BlockDevice": true, "CharDevice": true, "Directory": true, "DirectoryOrCreate": true, "File": true, "FileOrCreate": true, "Socket": true}
)

func validateKeyToPaths(items []corev1.KeyToPath, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		ip := p.Index(i)
		if it.Key == "" {
			errs = append(errs, field.Required(ip.Child("key"), ""))
		}
		if it.Path == "" {
			errs = append(errs, field.Required(ip.Child("path"), ""))
		}
		errs = append(errs, validateLocalPath(it.Path, ip.Child("path"))...)
		if it.Mode != nil && (*it.Mode > 0o777 || *it.Mode < 0) {
			errs = append(errs, field.Invalid(ip.Child("mode"), *it.Mode, "must be a number between 0 and 0777 (octal), both inclusive"))
		}
	}
	return errs
}

// volumeFieldPaths are the pod fields a downward API volume may project.
var volumeFieldPaths = []string{"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"}

func validateDownwardAPIFiles(items []corev1.DownwardAPIVolumeFile, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		ip := p.Index(i)
		if it.Path == "" {
			errs = append(errs, field.Required(ip.Child("path"), ""))
		}
		errs = append(errs, validateLocalPath(it.Path, ip.Child("path"))...)
		switch {
		case it.FieldRef != nil && it.ResourceFieldRef != nil:
			errs = append(errs, field.Invalid(ip, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
		case it.FieldRef != nil:
			fp := it.FieldRef.FieldPath
			ok := false
			for _, allowed := range volumeFieldPaths {
				ok = ok || fp == allowed
			}
			ok = ok || strings.HasPrefix(fp, "metadata.labels[") || strings.HasPrefix(fp, "metadata.annotations[")
			if !ok {
				errs = append(errs, field.NotSupported(ip.Child("fieldRef", "fieldPath"), fp, volumeFieldPaths))
			}
		case it.ResourceFieldRef != nil:
			if it.ResourceFieldRef.ContainerName == "" {
				errs = append(errs, field.Required(ip.Child("resourceFieldRef", "containerName"), ""))
			}
		default:
			errs = append(errs, field.Required(ip, "one of fieldRef and resourceFieldRef is required"))
		}
	}
	return errs
}

// validateLocalPath is upstream's validateLocalDescendingPath.
func validateLocalPath(p string, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	if path.IsAbs(p) {
		errs = append(errs, field.Invalid(fp, p, "must be a relative path"))
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			errs = append(errs, field.Invalid(fp, p, "must not contain '..'"))
			break
		}
	}
	return errs
}

// validateVolumeMounts checks a container's mounts: a mount path, a
// relative subPath, and a propagation mode the container may use.
func validateVolumeMounts(c *corev1.Container, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	privileged := c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
	for i, m := range c.VolumeMounts {
		mp := p.Index(i)
		if m.MountPath == "" {
			errs = append(errs, field.Required(mp.Child("mountPath"), ""))
		}
		if m.SubPath != "" {
			errs = append(errs, validateLocalPath(m.SubPath, mp.Child("subPath"))...)
		}
		if m.SubPath != "" && m.SubPathExpr != "" {
			errs = append(errs, field.Invalid(mp.Child("subPathExpr"), m.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
		}
		if m.SubPathExpr != "" {
			errs = append(errs, validateLocalPath(m.SubPathExpr, mp.Child("subPathExpr"))...)
		}
		if mode := m.MountPropagation; mode != nil {
			switch *mode {
			case corev1.MountPropagationNone, corev1.MountPropagationHostToContainer:
			case corev1.MountPropagationBidirectional:
				if !privileged {
					errs = append(errs, field.Forbidden(mp.Child("mountPropagation"), "Bidirectional mount propagation is available only to privileged containers"))
				}
			default:
				errs = append(errs, field.NotSupported(mp.Child("mountPropagation"), *mode, []string{"Bidirectional", "HostToContainer", "None"}))
			}
		}
	}
	return errs
}
