package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// CertOptions say where the certificates live and which addresses the API
// server answers on.
type CertOptions struct {
	Dir     string
	NodeIPs []net.IP
}

// Certs are the paths of a profile's certificates and keys.
type Certs struct {
	Dir, CACert, CAKey, ServerCert, ServerKey, AdminCert, AdminKey, SAKey, SAPub string
}

// AdminUser is the CN of the admin client certificate (like minikube-user).
const AdminUser = "nanokube-user"

// serverDNSNames are the names the serving certificate covers.
var serverDNSNames = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}

// kubernetesServiceIP is the ClusterIP of the kubernetes service.
var kubernetesServiceIP = net.IPv4(10, 96, 0, 1)

// EnsureCerts creates whatever is missing: the CA and the ServiceAccount key
// are kept once made, the serving certificate is re-issued when it no longer
// covers the requested addresses.
func EnsureCerts(opts CertOptions) (*Certs, error) {
	d := opts.Dir
	c := &Certs{
		Dir: d, CACert: filepath.Join(d, "ca.crt"), CAKey: filepath.Join(d, "ca.key"),
		ServerCert: filepath.Join(d, "apiserver.crt"), ServerKey: filepath.Join(d, "apiserver.key"),
		AdminCert: filepath.Join(d, "admin.crt"), AdminKey: filepath.Join(d, "admin.key"),
		SAKey: filepath.Join(d, "sa.key"), SAPub: filepath.Join(d, "sa.pub"),
	}
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, fmt.Errorf("create certificate directory: %w", err)
	}
	ca, caKey, err := c.ensureCA()
	if err != nil {
		return nil, err
	}
	ips := append([]net.IP{net.IPv4(127, 0, 0, 1), kubernetesServiceIP}, opts.NodeIPs...)
	if !certCovers(c.ServerCert, ips) {
		tmpl := leafTemplate("kube-apiserver", nil, x509.ExtKeyUsageServerAuth)
		tmpl.IPAddresses, tmpl.DNSNames = uniqueIPs(ips), serverDNSNames
		if err := issue(c.ServerCert, c.ServerKey, tmpl, ca, caKey); err != nil {
			return nil, fmt.Errorf("issue serving certificate: %w", err)
		}
	}
	if !exists(c.AdminCert) || !exists(c.AdminKey) {
		if err := issue(c.AdminCert, c.AdminKey, leafTemplate(AdminUser, []string{"system:masters"}, x509.ExtKeyUsageClientAuth), ca, caKey); err != nil {
			return nil, fmt.Errorf("issue admin certificate: %w", err)
		}
	}
	if !exists(c.SAKey) || !exists(c.SAPub) {
		if err := writeSAKey(c.SAKey, c.SAPub); err != nil {
			return nil, fmt.Errorf("create service account key: %w", err)
		}
	}
	return c, nil
}

// IssueClientCert signs a client certificate (CN = user, O = groups).
func (c *Certs) IssueClientCert(cn string, groups []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	ca, caKey, err := c.loadCA()
	if err != nil {
		return nil, nil, err
	}
	tmpl := leafTemplate(cn, groups, x509.ExtKeyUsageClientAuth)
	tmpl.NotAfter = time.Now().Add(validity)
	return sign(tmpl, ca, caKey)
}

// TLSServerConfig serves the API certificate and verifies client
// certificates against the cluster CA when one is given.
func (c *Certs) TLSServerConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.ServerCert, c.ServerKey)
	if err != nil {
		return nil, fmt.Errorf("load serving certificate: %w", err)
	}
	caPEM, err := os.ReadFile(c.CACert)
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("CA file holds no certificate")
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}, nil
}

func (c *Certs) ensureCA() (*x509.Certificate, crypto.Signer, error) {
	if exists(c.CACert) && exists(c.CAKey) {
		return c.loadCA()
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "nanokubeCA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if err := writeFileAtomic(c.CAKey, pemBlock("PRIVATE KEY", keyDER), 0o600); err != nil {
		return nil, nil, err
	}
	if err := writeFileAtomic(c.CACert, pemBlock("CERTIFICATE", der), 0o644); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// LoadCA reads the cluster CA and its key (the CSR signer signs with them).
func (c *Certs) LoadCA() (*x509.Certificate, crypto.Signer, error) { return c.loadCA() }

func (c *Certs) loadCA() (*x509.Certificate, crypto.Signer, error) {
	cert, err := readCert(c.CACert)
	if err != nil {
		return nil, nil, fmt.Errorf("read CA: %w", err)
	}
	b, err := os.ReadFile(c.CAKey)
	if err != nil {
		return nil, nil, fmt.Errorf("read CA key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, nil, fmt.Errorf("CA key %s is not PEM", c.CAKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("CA key %s cannot sign", c.CAKey)
	}
	return cert, signer, nil
}

func leafTemplate(cn string, orgs []string, usage x509.ExtKeyUsage) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(3, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
}

func sign(tmpl, ca *x509.Certificate, caKey crypto.Signer) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign %q: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", keyDER), nil
}

func issue(certPath, keyPath string, tmpl, ca *x509.Certificate, caKey crypto.Signer) error {
	certPEM, keyPEM, err := sign(tmpl, ca, caKey)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certPath, certPEM, 0o644)
}

func writeSAKey(keyPath, pubPath string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(keyPath, pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(pubPath, pemBlock("PUBLIC KEY", pub), 0o644)
}

// certCovers reports whether the certificate at path is valid for a year
// more and names every IP.
func certCovers(path string, ips []net.IP) bool {
	cert, err := readCert(path)
	if err != nil || time.Until(cert.NotAfter) < 365*24*time.Hour {
		return false
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s is not PEM", path)
	}
	return x509.ParseCertificate(blk.Bytes)
}

func uniqueIPs(ips []net.IP) []net.IP {
	var out []net.IP
	for _, ip := range ips {
		if !slices.ContainsFunc(out, ip.Equal) {
			out = append(out, ip)
		}
	}
	return out
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
