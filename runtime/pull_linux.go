//go:build linux

package runtime

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/errdefs"
)

// Auth is one set of registry credentials (from an imagePullSecret).
type Auth struct {
	Username, Password string
	// IdentityToken / RegistryToken come from dockercfg's identitytoken
	// and registrytoken fields.
	IdentityToken, RegistryToken string
}

// PullOptions say how to reach the registry.
type PullOptions struct {
	// Auth are the credentials that match the image, tried in order like
	// kubelet's keyring; none: an anonymous pull.
	Auth []Auth
	// Insecure registries (host[:port]) are reached over plain HTTP (or
	// HTTPS without verifying the certificate), like minikube's
	// --insecure-registry. Loopback registries are always insecure, as in
	// Docker.
	Insecure []string
}

// Dial and handshake limits: an unreachable registry fails a pull within
// seconds instead of hanging it.
const (
	pullDialTimeout     = 5 * time.Second
	pullTLSTimeout      = 10 * time.Second
	pullResponseTimeout = 30 * time.Second
)

// Pull pulls and unpacks ref through containerd's resolver. With several
// credentials each is tried in turn and the errors of all are returned.
func (r *ContainerdRuntime) Pull(ctx context.Context, ref string, o PullOptions) (Image, error) {
	ctx = r.ctx(ctx)
	ref = NormalizeRef(ref)
	auths := o.Auth
	if len(auths) == 0 {
		auths = []Auth{{}}
	}
	var errs []error
	for _, a := range auths {
		i, err := r.c.Pull(ctx, ref, client.WithPullUnpack, client.WithPullSnapshotter(r.snapshotter),
			client.WithResolver(docker.NewResolver(docker.ResolverOptions{Hosts: registryHosts(a, o.Insecure)})))
		if err == nil {
			return r.describe(ctx, i), nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return Image{}, errors.Join(errs...)
}

// RegistryHosts reaches registries the way pulls do, without credentials
// (BuildKit adds its own from the build session): plain HTTP or
// unverified TLS for loopback and the insecure ones, short timeouts.
func RegistryHosts(insecure []string) docker.RegistryHosts {
	return registryHosts(Auth{}, insecure)
}

// registryHosts configures the registry of a reference: the credentials,
// plain HTTP for insecure ones, and short network timeouts.
func registryHosts(a Auth, insecure []string) docker.RegistryHosts {
	return func(host string) ([]docker.RegistryHost, error) {
		insec := docker.IsLocalhost(host) || contains(insecure, host)
		tr := &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: pullDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   pullTLSTimeout,
			ResponseHeaderTimeout: pullResponseTimeout,
			MaxIdleConns:          4,
			IdleConnTimeout:       30 * time.Second,
			TLSClientConfig:       &tls.Config{InsecureSkipVerify: insec},
		}
		var rt http.RoundTripper = tr
		if insec {
			rt = docker.NewHTTPFallback(tr)
		}
		hc := &http.Client{Transport: rt}
		authz := docker.NewDockerAuthorizer(docker.WithAuthClient(hc), docker.WithAuthCreds(func(string) (string, string, error) {
			if a.IdentityToken != "" {
				return "", a.IdentityToken, nil
			}
			return a.Username, a.Password, nil
		}))
		if a.RegistryToken != "" {
			authz = docker.NewDockerAuthorizer(docker.WithAuthClient(hc), docker.WithAuthHeader(http.Header{"Authorization": {"Bearer " + a.RegistryToken}}))
		}
		endpoint := host
		if host == "docker.io" {
			endpoint = "registry-1.docker.io"
		}
		scheme := "https"
		if insec && !hasPort(host) {
			// Without a port the fallback cannot tell HTTP from HTTPS on
			// the same port: go straight to plain HTTP.
			scheme = "http"
		}
		return []docker.RegistryHost{{
			Client: hc, Authorizer: authz, Host: endpoint, Scheme: scheme, Path: "/v2",
			Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve | docker.HostCapabilityPush,
		}}, nil
	}
}

func hasPort(host string) bool {
	_, _, err := net.SplitHostPort(host)
	return err == nil
}

func contains(list []string, host string) bool {
	for _, h := range list {
		h = strings.TrimPrefix(strings.TrimPrefix(h, "http://"), "https://")
		if strings.TrimSuffix(h, "/") == host {
			return true
		}
	}
	return false
}

// TagImage gives the image src a second name dst.
func (r *ContainerdRuntime) TagImage(ctx context.Context, src, dst string) (Image, error) {
	ctx = r.ctx(ctx)
	is := r.c.ImageService()
	img, err := is.Get(ctx, NormalizeRef(src))
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", src, err)
	}
	img.Name = NormalizeRef(dst)
	_, err = is.Create(ctx, img)
	if errdefs.IsAlreadyExists(err) {
		_, err = is.Update(ctx, img, "target")
	}
	if err != nil {
		return Image{}, fmt.Errorf("tag %s as %s: %w", src, dst, err)
	}
	return r.GetImage(ctx, dst)
}
