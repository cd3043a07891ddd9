package apiserver

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

// Service address ranges (DESIGN.md).
var (
	serviceCIDR       = &net.IPNet{IP: net.IPv4(10, 96, 0, 0).To4(), Mask: net.CIDRMask(12, 32)}
	kubernetesIP      = net.IPv4(10, 96, 0, 1).To4()
	clusterDNSIP      = net.IPv4(10, 96, 0, 10).To4()
	nodePortMin       = 30000
	nodePortMax       = 32767
	ipAllocPrefix     = "/registry/ranges/serviceips/"
	nodePortAllocPref = "/registry/ranges/servicenodeports/"
)

// allocation is what a Service holds in the allocators: one key per IP and
// node port, created in the same transaction as the Service, so two
// Services can never get the same address.
type allocation struct {
	keys     []string
	userIP   bool
	userPort map[string]bool
	userHC   string // the key of a healthCheckNodePort the user chose
}

var errRetryAllocation = errors.New("allocation collided")

// allocateService fills in the Service's cluster IP and node ports and
// returns the allocator keys to create with it.
func (s *Server) allocateService(svc *corev1.Service, old *corev1.Service) (*allocation, error) {
	a := &allocation{userPort: map[string]bool{}}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "", nil
		return a, nil
	}
	if old != nil {
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = old.Spec.ClusterIP, old.Spec.ClusterIPs
	}
	path := field.NewPath("spec", "clusterIPs").Index(0)
	switch ip := svc.Spec.ClusterIP; {
	case ip == corev1.ClusterIPNone:
		svc.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
	case old != nil && old.Spec.ClusterIP != "":
	case ip != "":
		parsed := net.ParseIP(ip).To4()
		if parsed == nil || !serviceCIDR.Contains(parsed) {
			return nil, invalidService(svc, field.Invalid(path, ip, "failed to allocate IP "+ip+": the provided IP ("+ip+") is not in the valid range. The range of valid IPs is 10.96.0.0/12"))
		}
		a.userIP = true
		a.keys = append(a.keys, ipAllocPrefix+parsed.String())
		svc.Spec.ClusterIPs = []string{parsed.String()}
	default:
		ip, err := s.freeIP()
		if err != nil {
			return nil, err
		}
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = ip, []string{ip}
		a.keys = append(a.keys, ipAllocPrefix+ip)
	}
	needPorts := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
	oldPorts := map[int32]bool{}
	if old != nil {
		for _, p := range old.Spec.Ports {
			if p.NodePort != 0 {
				oldPorts[p.NodePort] = true
			}
		}
	}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if !needPorts {
			p.NodePort = 0
			continue
		}
		if p.NodePort != 0 {
			if oldPorts[p.NodePort] {
				continue
			}
			if int(p.NodePort) < nodePortMin || int(p.NodePort) > nodePortMax {
				return nil, invalidService(svc, field.Invalid(field.NewPath("spec", "ports").Index(i).Child("nodePort"), p.NodePort,
					fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", nodePortMin, nodePortMax)))
			}
			key := nodePortAllocPref + strconv.Itoa(int(p.NodePort))
			a.userPort[key] = true
			a.keys = append(a.keys, key)
			continue
		}
		port, err := s.freeNodePort(a.keys)
		if err != nil {
			return nil, err
		}
		p.NodePort = port
		a.keys = append(a.keys, nodePortAllocPref+strconv.Itoa(int(port)))
	}
	return a, s.allocateHealthCheckNodePort(svc, old, a)
}

// allocateHealthCheckNodePort keeps, takes (user's choice) or picks the
// Service's healthCheckNodePort from the node port range.
func (s *Server) allocateHealthCheckNodePort(svc, old *corev1.Service, a *allocation) error {
	path := field.NewPath("spec", "healthCheckNodePort")
	hc := svc.Spec.HealthCheckNodePort
	switch {
	case !registry.NeedsHealthCheck(svc):
		svc.Spec.HealthCheckNodePort = 0
	case old != nil && registry.NeedsHealthCheck(old) && old.Spec.HealthCheckNodePort != 0:
		if hc != 0 && hc != old.Spec.HealthCheckNodePort {
			return invalidService(svc, field.Invalid(path, hc, "cannot change healthCheckNodePort on loadBalancer service with externalTraffic=Local during update"))
		}
		svc.Spec.HealthCheckNodePort = old.Spec.HealthCheckNodePort
	case hc != 0:
		if int(hc) < nodePortMin || int(hc) > nodePortMax {
			return invalidService(svc, field.Invalid(path, hc,
				fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", nodePortMin, nodePortMax)))
		}
		key := nodePortAllocPref + strconv.Itoa(int(hc))
		if contains(a.keys, key) {
			return invalidService(svc, field.Invalid(path, hc, "provided port is already allocated"))
		}
		a.userHC = key
		a.keys = append(a.keys, key)
	default:
		port, err := s.freeNodePort(a.keys)
		if err != nil {
			return err
		}
		svc.Spec.HealthCheckNodePort = port
		a.keys = append(a.keys, nodePortAllocPref+strconv.Itoa(int(port)))
	}
	return nil
}

func invalidService(svc *corev1.Service, e *field.Error) error {
	return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, field.ErrorList{e})
}

// freeIP picks a random unallocated service IP (not .0, the kubernetes
// service's .1 or the DNS service's .10, which are allocated explicitly).
func (s *Server) freeIP() (string, error) {
	base := ipToUint(serviceCIDR.IP)
	size := uint32(1) << 20
	for range 64 {
		ip := uintToIP(base + 11 + rand.Uint32N(size-12))
		if _, err := s.store.Get(ipAllocPrefix + ip.String()); errors.Is(err, store.ErrNotFound) {
			return ip.String(), nil
		}
	}
	return "", apierrors.NewInternalError(errors.New("failed to allocate a serviceIP: range is full"))
}

func (s *Server) freeNodePort(taken []string) (int32, error) {
	for range 256 {
		p := nodePortMin + rand.IntN(nodePortMax-nodePortMin+1)
		key := nodePortAllocPref + strconv.Itoa(p)
		if contains(taken, key) {
			continue
		}
		if _, err := s.store.Get(key); errors.Is(err, store.ErrNotFound) {
			return int32(p), nil
		}
	}
	return 0, apierrors.NewInternalError(errors.New("failed to allocate a nodePort: range is full"))
}

// allocationConflict explains which allocation collided after a failed
// transaction: a user's choice is a 422, a random pick is retried.
func (s *Server) allocationConflict(svc *corev1.Service, a *allocation) error {
	for _, k := range a.keys {
		if _, err := s.store.Get(k); err == nil {
			switch {
			case a.userIP && len(k) > len(ipAllocPrefix) && k[:len(ipAllocPrefix)] == ipAllocPrefix:
				ip := k[len(ipAllocPrefix):]
				return invalidService(svc, field.Invalid(field.NewPath("spec", "clusterIPs").Index(0), ip, "failed to allocate IP "+ip+": provided IP is already allocated"))
			case k == a.userHC:
				return invalidService(svc, field.Invalid(field.NewPath("spec", "healthCheckNodePort"), k[len(nodePortAllocPref):], "provided port is already allocated"))
			case a.userPort[k]:
				port := k[len(nodePortAllocPref):]
				return invalidService(svc, field.Invalid(field.NewPath("spec", "ports").Index(0).Child("nodePort"), port, "provided port is already allocated"))
			}
			return errRetryAllocation
		}
	}
	return nil
}

// releaseService frees the Service's IP and node ports.
func (s *Server) releaseService(obj runtime.Object) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	var ops []store.Op
	if ip := net.ParseIP(svc.Spec.ClusterIP).To4(); ip != nil {
		ops = append(ops, store.Op{Kind: store.OpDelete, Key: ipAllocPrefix + ip.String()})
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			ops = append(ops, store.Op{Kind: store.OpDelete, Key: nodePortAllocPref + strconv.Itoa(int(p.NodePort))})
		}
	}
	if hc := svc.Spec.HealthCheckNodePort; hc != 0 {
		ops = append(ops, store.Op{Kind: store.OpDelete, Key: nodePortAllocPref + strconv.Itoa(int(hc))})
	}
	for _, op := range ops {
		if _, err := s.store.Txn([]store.Op{op}); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("release service allocation", "service", svc.Namespace+"/"+svc.Name, "key", op.Key, "err", err)
		}
	}
}

func ipToUint(ip net.IP) uint32 {
	ip = ip.To4()
	return uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
}

func uintToIP(n uint32) net.IP {
	return net.IPv4(byte(n>>24), byte(n>>16), byte(n>>8), byte(n)).To4()
}

// ops are the allocator keys to create with the Service.
func (a *allocation) ops() []store.Op {
	if a == nil {
		return nil
	}
	ops := make([]store.Op, 0, len(a.keys))
	for _, k := range a.keys {
		ops = append(ops, store.Op{Kind: store.OpCreate, Key: k, Value: []byte{}})
	}
	return ops
}

// releaseDropped frees what an update took away (node ports of a Service
// that is no longer a NodePort, removed ports).
func (s *Server) releaseDropped(old, cur *corev1.Service) {
	keep := map[int32]bool{cur.Spec.HealthCheckNodePort: true}
	for _, p := range cur.Spec.Ports {
		keep[p.NodePort] = true
	}
	dropped := old.DeepCopy()
	dropped.Spec.ClusterIP = ""
	if keep[old.Spec.HealthCheckNodePort] {
		dropped.Spec.HealthCheckNodePort = 0
	}
	var ports []corev1.ServicePort
	for _, p := range old.Spec.Ports {
		if p.NodePort != 0 && !keep[p.NodePort] {
			ports = append(ports, p)
		}
	}
	dropped.Spec.Ports = ports
	s.releaseService(dropped)
}

// afterDelete frees what a deleted object held.
func (s *Server) afterDelete(res *registry.Resource, obj runtime.Object) {
	if _, ok := obj.(*corev1.Service); ok {
		s.releaseService(obj)
	}
}
