package apiserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// serveProxy answers pods/proxy and services/proxy like kube-apiserver:
// the name is [scheme:]name[:port], a service goes to one of its ready
// endpoints, and the request is passed on with the path after /proxy.
// The connection to the pod goes through the pod's port-forward, so it
// needs no route from the API server to the pod network.
func (s *Server) serveProxy(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	scheme, name, port, ok := splitSchemeNamePort(info.name)
	if !ok {
		return badRequest("invalid request %q", info.name)
	}
	if info.proxyPath == "" {
		// kube-apiserver sends a request for the bare .../proxy on to .../proxy/.
		u := *r.URL
		u.Path += "/"
		http.Redirect(w, r, u.String(), http.StatusMovedPermanently)
		return nil
	}
	var pod *corev1.Pod
	var target int32
	var err error
	switch info.res.Plural {
	case "pods":
		pod, target, err = s.podProxyTarget(info, scheme, name, port)
	case "services":
		pod, target, err = s.serviceProxyTarget(info, name, port)
	}
	if err != nil {
		return err
	}
	if scheme == "" {
		scheme = "http"
	}
	host := net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(target)))
	ctx, cancel := context.WithCancel(r.Context())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait() // every port-forward ends with the request
	}()
	dial := func(context.Context, string, string) (net.Conn, error) {
		here, there := net.Pipe()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer there.Close()
			if err := s.cfg.PodStreams.PortForward(ctx, pod, target, there); err != nil && ctx.Err() == nil {
				s.log.Debug("proxy port-forward", "pod", pod.Namespace+"/"+pod.Name, "port", target, "err", err)
			}
		}()
		return here, nil
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = scheme, host, host
			pr.Out.URL.Path, pr.Out.URL.RawPath = info.proxyPath, ""
			// The caller's credentials are for the API server only.
			pr.Out.Header.Del("Authorization")
		},
		Transport: &http.Transport{
			DialContext:       dial,
			DisableKeepAlives: true,
			// kube-apiserver does not verify the serving certificates of pods.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.writeError(w, r, apierrors.NewServiceUnavailable(fmt.Sprintf("error trying to reach service: %v", err)))
		},
	}
	rp.ServeHTTP(w, r.WithContext(ctx))
	return nil
}

func (s *Server) podProxyTarget(info *requestInfo, scheme, name, port string) (*corev1.Pod, int32, error) {
	obj, _, err := s.getObject(info.res, info.namespace, name)
	if err != nil {
		return nil, 0, err
	}
	pod := obj.(*corev1.Pod)
	if pod.Status.PodIP == "" || pod.Spec.NodeName == "" {
		return nil, 0, apierrors.NewServiceUnavailable(fmt.Sprintf("pod %s has no IP yet", name))
	}
	target := int32(80)
	if scheme == "https" {
		target = 443
	}
	if port != "" {
		n, err := strconv.ParseInt(port, 10, 32)
		if err != nil {
			// A named container port.
			for _, c := range pod.Spec.Containers {
				for _, p := range c.Ports {
					if p.Name == port {
						n = int64(p.ContainerPort)
					}
				}
			}
			if n == 0 {
				return nil, 0, badRequest("invalid port %q", port)
			}
		}
		target = int32(n)
	}
	return pod, target, nil
}

// serviceProxyTarget picks a ready endpoint of the service port named or
// numbered port (the only unnamed port when port is empty).
func (s *Server) serviceProxyTarget(info *requestInfo, name, port string) (*corev1.Pod, int32, error) {
	obj, _, err := s.getObject(info.res, info.namespace, name)
	if err != nil {
		return nil, 0, err
	}
	svc := obj.(*corev1.Service)
	portName, found := "", false
	for _, sp := range svc.Spec.Ports {
		if port == sp.Name || port == strconv.Itoa(int(sp.Port)) {
			portName, found = sp.Name, true
			break
		}
	}
	if !found {
		return nil, 0, apierrors.NewServiceUnavailable(fmt.Sprintf("no service port %q found for service %q", port, name))
	}
	epObj, _, err := s.getObject(s.resource(schemaCoreV1, "endpoints"), info.namespace, name)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, 0, err
	}
	type candidate struct {
		ref  *corev1.ObjectReference
		port int32
	}
	var cands []candidate
	if ep, ok := epObj.(*corev1.Endpoints); ok {
		for _, ss := range ep.Subsets {
			for _, p := range ss.Ports {
				if p.Name != portName {
					continue
				}
				for _, a := range ss.Addresses {
					if a.TargetRef != nil && a.TargetRef.Kind == "Pod" {
						cands = append(cands, candidate{a.TargetRef, p.Port})
					}
				}
			}
		}
	}
	if len(cands) == 0 {
		return nil, 0, apierrors.NewServiceUnavailable(fmt.Sprintf("no endpoints available for service %q", name))
	}
	c := cands[rand.IntN(len(cands))]
	podObj, _, err := s.getObject(s.resource(schemaCoreV1, "pods"), c.ref.Namespace, c.ref.Name)
	if err != nil {
		return nil, 0, err
	}
	return podObj.(*corev1.Pod), c.port, nil
}

// splitSchemeNamePort parses kube-apiserver's proxy names: name,
// name:port or scheme:name:port (scheme http or https).
func splitSchemeNamePort(id string) (scheme, name, port string, ok bool) {
	parts := strings.Split(id, ":")
	switch len(parts) {
	case 1:
		name = parts[0]
	case 2:
		name, port = parts[0], parts[1]
	case 3:
		scheme, name, port = parts[0], parts[1], parts[2]
		if scheme != "http" && scheme != "https" {
			return "", "", "", false
		}
	default:
		return "", "", "", false
	}
	return scheme, name, port, name != ""
}
