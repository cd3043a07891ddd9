//go:build e2e

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nanokube/nanokube/network"
)

// ingressApp is a busybox httpd that answers every path the test asks for
// with its own name, and /cgi-bin/h with its pod name and the headers
// the ingress forwarded.
func ingressApp(name string, replicas int32) *appsv1.Deployment {
	script := `mkdir -p /tmp/w/api /tmp/w/cgi-bin && for f in index.html api/index.html apiary exact; do echo ` + name + ` > /tmp/w/$f; done && ` +
		`printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho "` + name + ` $(hostname) host=$HTTP_HOST xff=$HTTP_X_FORWARDED_FOR proto=$HTTP_X_FORWARDED_PROTO xhost=$HTTP_X_FORWARDED_HOST"\n' > /tmp/w/cgi-bin/h && ` +
		`chmod +x /tmp/w/cgi-bin/h && exec httpd -f -p 8080 -h /tmp/w`
	labels := map[string]string{"app": name}
	grace := int64(1)
	return &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &grace, Containers: []corev1.Container{{
				Name: "web", Image: busyboxRef, ImagePullPolicy: corev1.PullNever, Command: []string{"sh", "-c", script},
				Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
			}}}}}}
}

func ingressService(name string) *corev1.Service {
	return &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}}
}

// testCA is a CA and a way to issue server certificates from it.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ingress test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue writes a certificate for host named cn and its key to dir and
// returns their paths.
func (ca *testCA) issue(t *testing.T, dir, cn, host string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	crt, kf := filepath.Join(dir, cn+".crt"), filepath.Join(dir, cn+".key")
	if err := os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return crt, kf
}

// resolveClient is curl --resolve: every host name goes to nodeIP (the
// port of the URL kept), dialled from the lab netns.
func resolveClient(nodeIP string, roots *x509.CertPool) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, proto, addr string) (net.Conn, error) {
				_, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				return network.DialContext(ctx, theLab.Netns, proto, net.JoinHostPort(nodeIP, port))
			},
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type ingressAnswer struct {
	code     int
	body     string
	location string
	certCN   string
}

func ingressGet(c *http.Client, url string) (ingressAnswer, error) {
	resp, err := c.Get(url)
	if err != nil {
		return ingressAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	a := ingressAnswer{code: resp.StatusCode, body: strings.TrimSpace(string(b)), location: resp.Header.Get("Location")}
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		a.certCN = resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	return a, err
}

// TestIntegrationIngress: the built-in ingress controller on a two-node
// cluster routes by host and path to two Deployments, terminates TLS with
// a Secret's certificate (and picks up a renewed one), redirects plain HTTP
// for TLS hosts, answers 404 and 503 like ingress-nginx, and publishes the
// node IPs in the Ingress's status.
func TestIntegrationIngress(t *testing.T) {
	l := theLab
	const p = "e2e-ingress"
	l.startProfile(t, p, "--nodes=2")
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }

	// The default class exists from the start.
	if out := k("get", "ingressclass"); !strings.Contains(out, "nanokube   nanokube.io/ingress") {
		t.Errorf("kubectl get ingressclass:\n%s", out)
	}
	if got := k("get", "ingressclass", "nanokube", "-o", `jsonpath={.metadata.annotations.ingressclass\.kubernetes\.io/is-default-class}`); got != "true" {
		t.Errorf("is-default-class = %q", got)
	}

	l.apply(t, p, ingressApp("alpha", 2), ingressService("alpha"), ingressApp("beta", 1), ingressService("beta"))
	k("create", "service", "clusterip", "nobody", "--tcp=80:8080")
	ca := newTestCA(t)
	dir := t.TempDir()
	crt, key := ca.issue(t, dir, "secure-v1", "secure.test")
	k("create", "secret", "tls", "secure-tls", "--cert="+crt, "--key="+key)

	prefix, exact := networkingv1.PathTypePrefix, networkingv1.PathTypeExact
	path := func(p string, typ *networkingv1.PathType, svc string) networkingv1.HTTPIngressPath {
		return networkingv1.HTTPIngressPath{Path: p, PathType: typ, Backend: networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Name: "http"}}}}
	}
	rule := func(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
		return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}
	}
	// No ingressClassName: the DefaultIngressClass admission sets it.
	l.apply(t, p, &networkingv1.Ingress{TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"}, ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: networkingv1.IngressSpec{
			TLS: []networkingv1.IngressTLS{{Hosts: []string{"secure.test"}, SecretName: "secure-tls"}},
			Rules: []networkingv1.IngressRule{
				rule("app.test", path("/", &prefix, "alpha"), path("/api", &prefix, "beta"), path("/exact", &exact, "beta"), path("/down", &prefix, "nobody")),
				rule("secure.test", path("/", &prefix, "beta")),
				rule("*.wild.test", path("/", &prefix, "alpha")),
			},
		}})
	k("rollout", "status", "deploy/alpha", "--timeout=90s")
	k("rollout", "status", "deploy/beta", "--timeout=90s")
	if got := k("get", "ingress", "web", "-o", "jsonpath={.spec.ingressClassName}"); got != "nanokube" {
		t.Errorf("ingressClassName = %q, want nanokube (admission)", got)
	}

	ip1 := strings.TrimSpace(l.nanokube(t, "ip", "-p", p).stdout)
	ip2 := strings.TrimSpace(l.nanokube(t, "ip", "-p", p, "-n", p+"-m02").stdout)
	base := ip1[:strings.LastIndexByte(ip1, '.')+1]
	eventually(t, "ingress status has both node IPs", 30*time.Second, func() (bool, string) {
		got := k("get", "ingress", "web", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}")
		return got == ip1+" "+ip2, got
	})
	out := k("get", "ingress", "web")
	if f := strings.Fields(strings.Split(strings.TrimSpace(out), "\n")[1]); len(f) < 6 || f[1] != "nanokube" || f[2] != "app.test,secure.test,*.wild.test" || f[3] != ip1+","+ip2 || f[4]+" "+f[5] != "80, 443" {
		t.Errorf("kubectl get ingress:\n%s", out)
	}

	eventually(t, "kubectl describe ingress shows the Sync event", 20*time.Second, func() (bool, string) {
		out := k("describe", "ingress", "web")
		return strings.Contains(out, "Normal  Sync") && strings.Contains(out, "nanokube-ingress  Scheduled for sync"), out
	})

	for _, ip := range []string{ip1, ip2} {
		c := resolveClient(ip, ca.pool)
		check := func(url string, want ingressAnswer) {
			t.Helper()
			var got ingressAnswer
			var err error
			// The table follows the endpoints within moments of the pods
			// turning Ready.
			eventually(t, "GET "+url+" via "+ip, 20*time.Second, func() (bool, string) {
				got, err = ingressGet(c, url)
				return err == nil && got == want, fmt.Sprintf("%+v %v", got, err)
			})
		}
		check("http://app.test/", ingressAnswer{code: 200, body: "alpha"})
		check("http://app.test/api/", ingressAnswer{code: 200, body: "beta"})
		check("http://app.test/apiary", ingressAnswer{code: 200, body: "alpha"}) // Prefix matches path elements
		check("http://app.test/exact", ingressAnswer{code: 200, body: "beta"})
		check("http://x.wild.test/", ingressAnswer{code: 200, body: "alpha"})
		check("http://unknown.test/", ingressAnswer{code: 404, body: "default backend - 404"})
		check("http://app.test/down", ingressAnswer{code: 503, body: "503 Service Temporarily Unavailable"})
		check("http://secure.test/x?y=1", ingressAnswer{code: 308, body: `<a href="https://secure.test/x?y=1">Permanent Redirect</a>.`, location: "https://secure.test/x?y=1"})
		check("https://secure.test/", ingressAnswer{code: 200, body: "beta", certCN: "secure-v1"})

		// Forwarded headers as the backend sees them; both alpha pods
		// take turns.
		pods := map[string]bool{}
		for range 6 {
			a, err := ingressGet(c, "http://app.test/cgi-bin/h")
			if err != nil || a.code != 200 {
				t.Fatalf("GET app.test/cgi-bin/h via %s: %+v %v", ip, a, err)
			}
			f := strings.Fields(a.body)
			if want := []string{"alpha", f[1], "host=app.test", "xff=" + base + "1", "proto=http", "xhost=app.test"}; strings.Join(f, " ") != strings.Join(want, " ") {
				t.Errorf("alpha saw %q, want %q", a.body, strings.Join(want, " "))
			}
			pods[f[1]] = true
		}
		if len(pods) != 2 {
			t.Errorf("requests via %s reached alpha pods %v, want both in turn", ip, pods)
		}
	}

	// An Ingress with only a default backend catches every host no rule
	// matches.
	l.apply(t, p, &networkingv1.Ingress{TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"}, ObjectMeta: metav1.ObjectMeta{Name: "catchall"},
		Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: "beta", Port: networkingv1.ServiceBackendPort{Number: 80}}}}})
	c1 := resolveClient(ip1, ca.pool)
	eventually(t, "the default backend serves unknown hosts", 20*time.Second, func() (bool, string) {
		a, err := ingressGet(c1, "http://unknown.test/")
		return err == nil && a.code == 200 && a.body == "beta", fmt.Sprintf("%+v %v", a, err)
	})
	if a, err := ingressGet(c1, "http://app.test/"); err != nil || a.body != "alpha" {
		t.Errorf("app.test/ with a default backend around: %+v %v, want alpha", a, err)
	}

	// A certificate for a name without its own: the self-signed fallback.
	insecure := resolveClient(ip1, nil)
	insecure.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	if a, err := ingressGet(insecure, "https://other.test/"); err != nil || a.code != 200 || a.body != "beta" || a.certCN != "nanokube Ingress Fake Certificate" {
		t.Errorf("https://other.test/: %+v %v, want the default backend with the fallback certificate", a, err)
	}

	// A changed Ingress applies to the next request on a kept-alive
	// connection: nothing restarts, nothing is dropped.
	keep := resolveClient(ip1, ca.pool)
	keep.Transport.(*http.Transport).DisableKeepAlives = false
	var dials atomic.Int32
	keep.Transport.(*http.Transport).DialContext = func(ctx context.Context, proto, addr string) (net.Conn, error) {
		dials.Add(1)
		return network.DialContext(ctx, theLab.Netns, proto, net.JoinHostPort(ip1, "80"))
	}
	if a, err := ingressGet(keep, "http://app.test/exact"); err != nil || a.body != "beta" {
		t.Fatalf("GET app.test/exact before the change: %+v %v", a, err)
	}
	k("patch", "ingress", "web", "--type=json", `-p=[{"op":"replace","path":"/spec/rules/0/http/paths/2/backend/service/name","value":"alpha"}]`)
	eventually(t, "the changed rule applies on the same connection", 20*time.Second, func() (bool, string) {
		a, err := ingressGet(keep, "http://app.test/exact")
		return err == nil && a.body == "alpha", fmt.Sprintf("%+v %v", a, err)
	})
	if n := dials.Load(); n != 1 {
		t.Errorf("the client connected %d times across the change, want once", n)
	}

	// A renewed certificate in the Secret is served from the next
	// handshake on, through the same listener.
	crt2, key2 := ca.issue(t, dir, "secure-v2", "secure.test")
	manifest := k("create", "secret", "tls", "secure-tls", "--cert="+crt2, "--key="+key2, "--dry-run=client", "-o", "yaml")
	mpath := filepath.Join(dir, "secret.yaml")
	if err := os.WriteFile(mpath, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	k("apply", "-f", mpath)
	c := resolveClient(ip1, ca.pool)
	eventually(t, "the renewed certificate is served", 20*time.Second, func() (bool, string) {
		a, err := ingressGet(c, "https://secure.test/cgi-bin/h")
		return err == nil && a.certCN == "secure-v2" && strings.Contains(a.body, " proto=https "), fmt.Sprintf("%+v %v", a, err)
	})
}
