package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nanokube/nanokube/network"
)

// probeState is what a container's probes last found.
type probeState struct {
	cancel  context.CancelFunc
	ready   bool // readiness (true when there is no readiness probe)
	started bool // startup probe passed (true when there is none)
}

// startProbes runs the container's probes until its context ends: the
// readiness result drives the Ready condition, a failing liveness probe
// restarts the container, like kubelet.
func (a *Agent) startProbes(pod *corev1.Pod, st *podState, c corev1.Container) {
	a.mu.Lock()
	if old := st.probes[c.Name]; old != nil {
		old.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	ps := &probeState{cancel: cancel, ready: c.ReadinessProbe == nil, started: c.StartupProbe == nil}
	st.probes[c.Name] = ps
	a.mu.Unlock()
	run := func(kind string, p *corev1.Probe, onResult func(ok bool, failures int32) bool) {
		a.waiters.Add(1)
		go func() {
			defer a.waiters.Done()
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(p.InitialDelaySeconds) * time.Second):
			}
			t := time.NewTicker(time.Duration(max(p.PeriodSeconds, 1)) * time.Second)
			defer t.Stop()
			var fails, oks int32
			for {
				if kind != "startup" {
					a.mu.Lock()
					started := ps.started
					a.mu.Unlock()
					if !started {
						goto wait
					}
				}
				if err := a.probe(ctx, st, &c, p); err != nil {
					// kubelet records every failed check; the event
					// recorder folds repeats into one event with a count.
					fails, oks = fails+1, 0
					a.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %v", capitalize(kind), err)
				} else {
					oks, fails = oks+1, 0
				}
				if onResult(oks >= p.SuccessThreshold, fails) {
					return
				}
			wait:
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	if p := c.StartupProbe; p != nil {
		run("startup", p, func(ok bool, fails int32) bool {
			if ok {
				a.mu.Lock()
				ps.started = true
				a.mu.Unlock()
				a.queue.Add(st.key)
				return true
			}
			if fails >= p.FailureThreshold {
				a.restartUnhealthy(pod, st, c, "startup", p)
				return true
			}
			return false
		})
	}
	if p := c.ReadinessProbe; p != nil {
		run("readiness", p, func(ok bool, fails int32) bool {
			a.mu.Lock()
			changed := false
			if ok && !ps.ready {
				ps.ready, changed = true, true
			} else if !ok && fails >= p.FailureThreshold && ps.ready {
				ps.ready, changed = false, true
			}
			a.mu.Unlock()
			if changed {
				a.queue.Add(st.key)
			}
			return false
		})
	}
	if p := c.LivenessProbe; p != nil {
		run("liveness", p, func(ok bool, fails int32) bool {
			if fails >= p.FailureThreshold {
				a.restartUnhealthy(pod, st, c, "liveness", p)
				return true
			}
			return false
		})
	}
}

// restartUnhealthy kills a container whose liveness or startup probe
// failed; its exit brings the usual restart. The probe's own
// terminationGracePeriodSeconds, when set, replaces the pod's (kubelet).
func (a *Agent) restartUnhealthy(pod *corev1.Pod, st *podState, c corev1.Container, kind string, p *corev1.Probe) {
	a.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeNormal, "Killing", "Container %s failed %s probe, will be restarted", c.Name, kind)
	grace := time.Duration(st.grace) * time.Second
	if p.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*p.TerminationGracePeriodSeconds) * time.Second
	}
	if err := a.stopContainer(context.Background(), pod, st, &c, containerID(st.uid, c.Name), grace); err != nil {
		a.log.Info("stop unhealthy container", "pod", st.key, "container", c.Name, "err", err)
	}
}

func (a *Agent) stopProbes(st *podState, name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ps := st.probes[name]; ps != nil {
		ps.cancel()
		delete(st.probes, name)
	}
}

// probeReady reports the readiness and startup results of a container.
func (a *Agent) probeReady(st *podState, name string) (ready, started bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ps := st.probes[name]
	if ps == nil {
		return true, true
	}
	return ps.ready && ps.started, ps.started
}

// probe runs one check of container c: HTTP GET, TCP connect and gRPC
// dial the pod from its node's network namespace; exec runs the command
// in the container.
func (a *Agent) probe(ctx context.Context, st *podState, c *corev1.Container, p *corev1.Probe) error {
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.Exec != nil:
		out, code, err := a.runInContainer(ctx, st.uid, c.Name, p.Exec.Command)
		if ctx.Err() != nil {
			return fmt.Errorf("command %q timed out", strings.Join(p.Exec.Command, " "))
		}
		if err != nil {
			return err
		}
		if code != 0 {
			return errors.New(string(out)) // kubelet reports the command's output
		}
		return nil
	case p.HTTPGet != nil:
		return a.httpGet(ctx, st, c, p.HTTPGet, "kube-probe/1.37")
	case p.TCPSocket != nil:
		host := p.TCPSocket.Host
		if host == "" {
			host = st.ip
		}
		conn, err := a.dialPod(ctx, net.JoinHostPort(host, containerPort(c, p.TCPSocket.Port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case p.GRPC != nil:
		return a.grpcProbe(ctx, st, p.GRPC, timeout)
	}
	return nil
}

// dialPod connects to an address from the pod's node network namespace.
func (a *Agent) dialPod(ctx context.Context, addr string) (net.Conn, error) {
	return network.DialContext(ctx, a.cfg.PodNet.NodeNetns, "tcp", addr)
}

// containerPort resolves a probe's or hook's port, a number or the name
// of one of the container's ports.
func containerPort(c *corev1.Container, p intstr.IntOrString) string {
	if p.Type == intstr.Int {
		return strconv.Itoa(p.IntValue())
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return strconv.Itoa(int(cp.ContainerPort))
		}
	}
	return p.StrVal
}

// httpGet performs an httpGet probe or hook against the pod; a status
// outside 200-399 fails.
func (a *Agent) httpGet(ctx context.Context, st *podState, c *corev1.Container, g *corev1.HTTPGetAction, agent string) error {
	host := g.Host
	if host == "" {
		host = st.ip
	}
	scheme := "http"
	if g.Scheme == corev1.URISchemeHTTPS {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, containerPort(c, g.Port)), g.Path), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", agent)
	for _, h := range g.HTTPHeaders {
		if http.CanonicalHeaderKey(h.Name) == "Host" {
			req.Host = h.Value // kubelet sends a Host header as the request's host
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext:       func(ctx context.Context, _, addr string) (net.Conn, error) { return a.dialPod(ctx, addr) },
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // kubelet does not verify probe targets either
	}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return nil
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
