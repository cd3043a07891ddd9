package cluster

import (
	"fmt"
	"net"
	"os"
)

// certsFor returns the profile's certificates for the node IPs in st.
func certsFor(p Profile, st State) (*Certs, error) {
	var ips []net.IP
	for _, n := range st.Nodes {
		if ip := net.ParseIP(n.IP); ip != nil {
			ips = append(ips, ip)
		}
	}
	c, err := EnsureCerts(CertOptions{Dir: p.CertsDir(), NodeIPs: ips})
	if err != nil {
		return nil, fmt.Errorf("load certificates of profile %q: %w", p.Name, err)
	}
	return c, nil
}

// writeKubeconfig merges the profile's context into the user's kubeconfig.
func writeKubeconfig(p Profile, st State) error {
	c, err := certsFor(p, st)
	if err != nil {
		return err
	}
	var e KubeconfigEntry
	e.Name, e.Server = p.Name, st.APIEndpoint
	for _, f := range []struct {
		path string
		dst  *[]byte
	}{{c.CACert, &e.CAData}, {c.AdminCert, &e.CertData}, {c.AdminKey, &e.KeyData}} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			return fmt.Errorf("write kubeconfig: %w", err)
		}
		*f.dst = b
	}
	if err := MergeKubeconfig(KubeconfigPath(), e); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", KubeconfigPath(), err)
	}
	return nil
}
