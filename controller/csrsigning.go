package controller

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	certlisters "k8s.io/client-go/listers/certificates/v1"
	"k8s.io/client-go/tools/cache"
)

// CSRSigningConfig builds the CSR signer.
type CSRSigningConfig struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	// CA signs; its certificate bounds the issued certificates' lifetime.
	CACert *x509.Certificate
	CAKey  crypto.Signer
	// MaxDuration is kube-controller-manager's --cluster-signing-duration.
	MaxDuration time.Duration
	Log         *slog.Logger
}

// CSRSigning is kube-controller-manager's csrsigning controller: approved
// requests for the kubernetes.io signers get a certificate from the
// cluster CA; requests a signer may not issue get a Failed condition.
type CSRSigning struct {
	cfg    CSRSigningConfig
	csrs   certlisters.CertificateSigningRequestLister
	synced cache.InformerSynced
	w      *worker
}

// NewCSRSigning builds the controller.
func NewCSRSigning(cfg CSRSigningConfig) (*CSRSigning, error) {
	if cfg.CACert == nil || cfg.CAKey == nil {
		return nil, errors.New("csr signing: no CA")
	}
	if cfg.MaxDuration == 0 {
		cfg.MaxDuration = 365 * 24 * time.Hour
	}
	inf := cfg.Informers.Certificates().V1().CertificateSigningRequests()
	c := &CSRSigning{cfg: cfg, csrs: inf.Lister(), synced: inf.Informer().HasSynced}
	c.w = newWorker("csrsigning", cfg.Log, c.sync)
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.w.enqueue,
		UpdateFunc: func(_, obj any) { c.w.enqueue(obj) },
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run works until ctx ends.
func (c *CSRSigning) Run(ctx context.Context) error { return c.w.run(ctx, c.synced) }

func (c *CSRSigning) sync(ctx context.Context, name string) error {
	csr, err := c.csrs.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(csr.Status.Certificate) > 0 || !hasCSRCondition(csr, certificatesv1.CertificateApproved) ||
		hasCSRCondition(csr, certificatesv1.CertificateDenied) || hasCSRCondition(csr, certificatesv1.CertificateFailed) {
		return nil
	}
	validate, ok := csrSigners[csr.Spec.SignerName]
	if !ok {
		return nil // another signer's request
	}
	next := csr.DeepCopy()
	req, err := parseCSR(csr.Spec.Request)
	if err == nil {
		err = validate(req, csr.Spec.Usages)
	}
	if err != nil {
		now := metav1.Now()
		next.Status.Conditions = append(next.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue, Reason: "SignerValidationFailure",
			Message: err.Error(), LastUpdateTime: now, LastTransitionTime: now})
	} else if next.Status.Certificate, err = c.sign(req, csr); err != nil {
		return fmt.Errorf("sign %s: %w", name, err)
	}
	if _, err := c.cfg.Client.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update %s status: %w", name, err)
	}
	return nil
}

// sign issues the certificate: the request's subject and names, the
// usages asked for, at most the asked duration (and never past the CA),
// backdated five minutes for clock skew like kube-controller-manager.
func (c *CSRSigning) sign(req *x509.CertificateRequest, csr *certificatesv1.CertificateSigningRequest) ([]byte, error) {
	ttl := c.cfg.MaxDuration
	if s := csr.Spec.ExpirationSeconds; s != nil && time.Duration(*s)*time.Second < ttl {
		ttl = time.Duration(*s) * time.Second
	}
	now := time.Now()
	notAfter := now.Add(ttl)
	if notAfter.After(c.cfg.CACert.NotAfter) {
		notAfter = c.cfg.CACert.NotAfter
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: req.Subject,
		DNSNames: req.DNSNames, IPAddresses: req.IPAddresses, EmailAddresses: req.EmailAddresses, URIs: req.URIs,
		NotBefore: now.Add(-5 * time.Minute), NotAfter: notAfter,
		BasicConstraintsValid: true,
	}
	for _, u := range csr.Spec.Usages {
		switch u {
		case certificatesv1.UsageDigitalSignature:
			tmpl.KeyUsage |= x509.KeyUsageDigitalSignature
		case certificatesv1.UsageKeyEncipherment:
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		case certificatesv1.UsageClientAuth:
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
		case certificatesv1.UsageServerAuth:
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cfg.CACert, req.PublicKey, c.cfg.CAKey)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func hasCSRCondition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func parseCSR(b []byte) (*x509.CertificateRequest, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("PEM block type must be CERTIFICATE REQUEST")
	}
	return x509.ParseCertificateRequest(blk.Bytes)
}

// csrSigners are the kubernetes.io signers kube-controller-manager runs,
// each with the check its requests must pass.
var csrSigners = map[string]func(*x509.CertificateRequest, []certificatesv1.KeyUsage) error{
	certificatesv1.KubeAPIServerClientSignerName: func(_ *x509.CertificateRequest, u []certificatesv1.KeyUsage) error {
		return checkUsages(u, "client", certificatesv1.UsageClientAuth)
	},
	certificatesv1.KubeAPIServerClientKubeletSignerName: func(req *x509.CertificateRequest, u []certificatesv1.KeyUsage) error {
		if err := checkNodeSubject(req); err != nil {
			return err
		}
		if len(req.DNSNames) > 0 || len(req.EmailAddresses) > 0 || len(req.IPAddresses) > 0 || len(req.URIs) > 0 {
			return errors.New("DNS, URI, Email SANs, and IP SANs are not allowed in kubelet client certificates")
		}
		return checkUsages(u, "client", certificatesv1.UsageClientAuth)
	},
	certificatesv1.KubeletServingSignerName: func(req *x509.CertificateRequest, u []certificatesv1.KeyUsage) error {
		if err := checkNodeSubject(req); err != nil {
			return err
		}
		if len(req.DNSNames) == 0 && len(req.IPAddresses) == 0 {
			return errors.New("DNS or IP subjectAltName is required")
		}
		if len(req.EmailAddresses) > 0 || len(req.URIs) > 0 {
			return errors.New("Email and URI subjectAltNames are not allowed")
		}
		return checkUsages(u, "serving", certificatesv1.UsageServerAuth)
	},
}

// checkUsages: the required usage is there and nothing but it, digital
// signature and key encipherment is asked for.
func checkUsages(usages []certificatesv1.KeyUsage, kind string, required certificatesv1.KeyUsage) error {
	allowed := []certificatesv1.KeyUsage{required, certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment}
	var bad []string
	for _, u := range usages {
		if !slices.Contains(allowed, u) {
			bad = append(bad, string(u))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("invalid usage for %s certificate: %s", kind, strings.Join(bad, ","))
	}
	if !slices.Contains(usages, required) {
		return fmt.Errorf("missing required usages: [%s]", required)
	}
	return nil
}

func checkNodeSubject(req *x509.CertificateRequest) error {
	if !slices.Equal(req.Subject.Organization, []string{"system:nodes"}) {
		return errors.New("subject organization is not system:nodes")
	}
	if !strings.HasPrefix(req.Subject.CommonName, "system:node:") {
		return errors.New("subject common name does not begin with system:node:")
	}
	return nil
}
