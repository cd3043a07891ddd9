package ingress

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// tlsSecret is a kubernetes.io/tls Secret with a self-signed certificate
// for hosts, named by cn.
func tlsSecret(t *testing.T, name, cn string, hosts ...string) *corev1.Secret {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, DNSNames: hosts,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{
		corev1.TLSCertKey:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}}
}

// TestTLSSNI: each server name gets its Secret's certificate (exact host,
// then wildcard), anything else the self-signed fallback; a changed Secret
// is served from the next handshake on.
func TestTLSSNI(t *testing.T) {
	fallback, err := selfSigned(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	src := newSource()
	src.service("web", "10.0.0.1")
	for _, s := range []*corev1.Secret{
		tlsSecret(t, "a", "a-cert", "a.test"),
		tlsSecret(t, "wild", "wild-cert", "*.wild.test"),
		tlsSecret(t, "exact", "exact-cert", "x.wild.test"),
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "opaque"}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"x": nil}},
	} {
		src.secrets["default/"+s.Name] = s
	}
	rules := ing("web", 1, map[string][]pathSpec{"a.test": {{"/", "Prefix", "web"}}})
	rules.Spec.TLS = []networkingv1.IngressTLS{
		{Hosts: []string{"a.test"}, SecretName: "a"},
		{Hosts: []string{"*.wild.test"}, SecretName: "wild"},
		{Hosts: []string{"x.wild.test"}, SecretName: "exact"},
		{Hosts: []string{"bad.test"}, SecretName: "opaque"},
		{Hosts: []string{"gone.test"}, SecretName: "nosuch"},
	}
	var table atomic.Pointer[Table]
	table.Store(Build(ingsOf(rules), src, fallback))
	if p := table.Load().Problems; len(p) != 2 {
		t.Errorf("problems = %q, want the opaque and the missing secret", p)
	}
	// The node's listener pair, served as the daemon serves them.
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	secure, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeConfig{HTTP: plain, HTTPS: secure, Handler: http.NotFoundHandler(), Table: table.Load, Log: slog.New(slog.DiscardHandler)})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	served := func(serverName string) string {
		t.Helper()
		conn, err := tls.Dial("tcp", secure.Addr().String(), &tls.Config{ServerName: serverName, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("handshake for %q: %v", serverName, err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	for _, tc := range []struct{ sni, want string }{
		{"a.test", "a-cert"},
		{"A.TEST", "a-cert"},
		{"y.wild.test", "wild-cert"},
		{"x.wild.test", "exact-cert"},
		{"a.b.wild.test", FallbackCommonName},
		{"bad.test", FallbackCommonName},
		{"gone.test", FallbackCommonName},
		{"", FallbackCommonName}, // no SNI (dialled by IP)
	} {
		if got := served(tc.sni); got != tc.want {
			t.Errorf("SNI %q: served %q, want %q", tc.sni, got, tc.want)
		}
	}

	// The certificate verifies for its host with the Secret's CA.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(src.secrets["default/a"].Data[corev1.TLSCertKey])
	conn, err := tls.Dial("tcp", secure.Addr().String(), &tls.Config{ServerName: "a.test", RootCAs: pool})
	if err != nil {
		t.Errorf("verified handshake for a.test: %v", err)
	} else {
		conn.Close()
	}

	// A renewed Secret: the next handshake gets the new certificate.
	src.secrets["default/a"] = tlsSecret(t, "a", "a-renewed", "a.test")
	table.Store(Build(ingsOf(rules), src, fallback))
	if got := served("a.test"); got != "a-renewed" {
		t.Errorf("after the Secret changed: served %q, want a-renewed", got)
	}
	if !table.Load().TLSHost("a.test") || !table.Load().TLSHost("q.wild.test") || table.Load().TLSHost("plain.test") {
		t.Errorf("TLS hosts wrong: a.test %v q.wild.test %v plain.test %v", table.Load().TLSHost("a.test"), table.Load().TLSHost("q.wild.test"), table.Load().TLSHost("plain.test"))
	}
}
