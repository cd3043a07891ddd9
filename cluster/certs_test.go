package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func TestEnsureCerts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	node := net.IPv4(192, 168, 49, 2)
	c, err := EnsureCerts(CertOptions{Dir: dir, NodeIPs: []net.IP{node}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := readCert(c.ServerCert)
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []net.IP{node, net.IPv4(127, 0, 0, 1), net.IPv4(10, 96, 0, 1)} {
		if !slices.ContainsFunc(srv.IPAddresses, ip.Equal) {
			t.Errorf("serving cert lacks IP %s: %v", ip, srv.IPAddresses)
		}
	}
	for _, name := range []string{"localhost", "kubernetes.default.svc.cluster.local"} {
		if err := srv.VerifyHostname(name); err != nil {
			t.Errorf("serving cert does not cover %s: %v", name, err)
		}
	}
	admin, err := readCert(c.AdminCert)
	if err != nil {
		t.Fatal(err)
	}
	if admin.Subject.CommonName != AdminUser || !slices.Equal(admin.Subject.Organization, []string{"system:masters"}) {
		t.Errorf("admin cert subject = %v", admin.Subject)
	}
	ca, _ := readCert(c.CACert)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := admin.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin cert does not verify against the CA: %v", err)
	}
	for _, k := range []string{c.CAKey, c.ServerKey, c.AdminKey, c.SAKey} {
		fi, err := os.Stat(k)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, %v; want 0600", k, fi.Mode().Perm(), err)
		}
	}
	if _, err := c.TLSServerConfig(); err != nil {
		t.Errorf("TLSServerConfig: %v", err)
	}

	// Idempotent: same inputs keep every file; a new IP re-issues only the serving cert.
	caBefore, _ := os.ReadFile(c.CACert)
	srvBefore, _ := os.ReadFile(c.ServerCert)
	if _, err := EnsureCerts(CertOptions{Dir: dir, NodeIPs: []net.IP{node}}); err != nil {
		t.Fatal(err)
	}
	if srvAgain, _ := os.ReadFile(c.ServerCert); string(srvAgain) != string(srvBefore) {
		t.Errorf("EnsureCerts with the same IPs re-issued the serving cert")
	}
	if _, err := EnsureCerts(CertOptions{Dir: dir, NodeIPs: []net.IP{node, net.IPv4(192, 168, 49, 3)}}); err != nil {
		t.Fatal(err)
	}
	if srvNew, _ := os.ReadFile(c.ServerCert); string(srvNew) == string(srvBefore) {
		t.Errorf("EnsureCerts with a new IP kept the old serving cert")
	}
	if caAfter, _ := os.ReadFile(c.CACert); string(caAfter) != string(caBefore) {
		t.Errorf("EnsureCerts replaced the CA")
	}

	certPEM, keyPEM, err := c.IssueClientCert("system:node:n1", []string{"system:nodes"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Errorf("issued client cert is unusable: %v", err)
	}
}

func TestKubeconfigMergeKeepsOtherEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kube", "config")
	orig := clientcmdapi.NewConfig()
	orig.Clusters["prod"] = &clientcmdapi.Cluster{Server: "https://prod.example:6443", InsecureSkipTLSVerify: true, Extensions: map[string]runtime.Object{}}
	orig.AuthInfos["prod-admin"] = &clientcmdapi.AuthInfo{Token: "secret-token", Extensions: map[string]runtime.Object{}}
	orig.Contexts["prod"] = &clientcmdapi.Context{Cluster: "prod", AuthInfo: "prod-admin", Namespace: "apps", Extensions: map[string]runtime.Object{}}
	orig.CurrentContext = "prod"
	orig.Preferences.Colors = true
	if err := clientcmd.WriteToFile(*orig, path); err != nil {
		t.Fatal(err)
	}
	before, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	e := KubeconfigEntry{Name: "nanokube", Server: "https://192.168.49.2:8443", CAData: []byte("ca"), CertData: []byte("cert"), KeyData: []byte("key")}
	if err := MergeKubeconfig(path, e); err != nil {
		t.Fatal(err)
	}
	merged, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if merged.CurrentContext != "nanokube" {
		t.Errorf("current-context = %q, want nanokube", merged.CurrentContext)
	}
	if st, _ := KubeconfigStatus(path, "nanokube", e.Server); st != "Configured" {
		t.Errorf("KubeconfigStatus = %q, want Configured", st)
	}
	if st, _ := KubeconfigStatus(path, "nanokube", "https://elsewhere:1"); st != "Misconfigured" {
		t.Errorf("KubeconfigStatus with another server = %q, want Misconfigured", st)
	}
	for _, check := range []struct {
		name      string
		got, want any
	}{
		{"cluster prod", merged.Clusters["prod"], before.Clusters["prod"]},
		{"user prod-admin", merged.AuthInfos["prod-admin"], before.AuthInfos["prod-admin"]},
		{"context prod", merged.Contexts["prod"], before.Contexts["prod"]},
		{"preferences", merged.Preferences, before.Preferences},
	} {
		if !reflect.DeepEqual(check.got, check.want) {
			t.Errorf("%s changed by merge: %+v, was %+v", check.name, check.got, check.want)
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if err := RemoveKubeconfig(path, "nanokube"); err != nil {
		t.Fatal(err)
	}
	after, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := after.Contexts["nanokube"]; ok || after.CurrentContext != "" {
		t.Errorf("remove left context or current-context %q", after.CurrentContext)
	}
	if !reflect.DeepEqual(after.Clusters, before.Clusters) || !reflect.DeepEqual(after.AuthInfos, before.AuthInfos) || !reflect.DeepEqual(after.Contexts, before.Contexts) {
		t.Errorf("remove did not restore the other entries")
	}
	if err := RemoveKubeconfig(filepath.Join(t.TempDir(), "missing"), "x"); err != nil {
		t.Errorf("RemoveKubeconfig of a missing file = %v", err)
	}
}
