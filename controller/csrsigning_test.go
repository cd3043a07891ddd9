package controller

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func testCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return ca, key
}

func testRequest(t *testing.T, cn string, orgs ...string) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: orgs}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestCSRSigning(t *testing.T) {
	approved := certificatesv1.CertificateSigningRequestStatus{Conditions: []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}}}
	day := int32(86400)
	csrs := []*certificatesv1.CertificateSigningRequest{
		{ObjectMeta: metav1.ObjectMeta{Name: "alice"}, Status: approved, Spec: certificatesv1.CertificateSigningRequestSpec{
			SignerName: certificatesv1.KubeAPIServerClientSignerName, ExpirationSeconds: &day, Request: testRequest(t, "alice", "dev"),
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth, certificatesv1.UsageDigitalSignature}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "server"}, Status: approved, Spec: certificatesv1.CertificateSigningRequestSpec{
			SignerName: certificatesv1.KubeAPIServerClientSignerName, Request: testRequest(t, "bob"),
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageServerAuth}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "pending"}, Spec: certificatesv1.CertificateSigningRequestSpec{
			SignerName: certificatesv1.KubeAPIServerClientSignerName, Request: testRequest(t, "carol"), Usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Status: approved, Spec: certificatesv1.CertificateSigningRequestSpec{
			SignerName: "example.com/custom", Request: testRequest(t, "dave"), Usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth}}},
	}
	cs := fake.NewClientset()
	ctx := context.Background()
	for _, c := range csrs {
		if _, err := cs.CertificatesV1().CertificateSigningRequests().Create(ctx, c, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	inf := informers.NewSharedInformerFactory(cs, 0)
	ca, caKey := testCA(t)
	c, err := NewCSRSigning(CSRSigningConfig{Client: cs, Informers: inf, CACert: ca, CAKey: caKey})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	inf.Start(stop)
	inf.WaitForCacheSync(stop)
	for _, c2 := range csrs {
		if err := c.sync(ctx, c2.Name); err != nil {
			t.Fatalf("sync %s: %v", c2.Name, err)
		}
	}
	get := func(name string) *certificatesv1.CertificateSigningRequest {
		got, err := cs.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	blk, _ := pem.Decode(get("alice").Status.Certificate)
	if blk == nil {
		t.Fatal("alice's approved request got no certificate")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(ca); err != nil || cert.Subject.CommonName != "alice" || cert.Subject.Organization[0] != "dev" ||
		len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || cert.NotAfter.Sub(cert.NotBefore) != 24*time.Hour+5*time.Minute {
		t.Errorf("alice's certificate: subject %v, usages %v, %v..%v, signature %v", cert.Subject, cert.ExtKeyUsage, cert.NotBefore, cert.NotAfter, err)
	}
	srv := get("server")
	if len(srv.Status.Certificate) != 0 || len(srv.Status.Conditions) != 2 || srv.Status.Conditions[1].Type != certificatesv1.CertificateFailed ||
		srv.Status.Conditions[1].Reason != "SignerValidationFailure" || srv.Status.Conditions[1].Message != "invalid usage for client certificate: server auth" {
		t.Errorf("a client signer request for server auth: %+v", srv.Status)
	}
	if len(get("pending").Status.Certificate) != 0 || len(get("other").Status.Certificate) != 0 {
		t.Errorf("an unapproved request or another signer's request was signed")
	}
}
