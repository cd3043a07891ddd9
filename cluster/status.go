package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Status is what `nanokube status` reports, like `minikube status`.
type Status struct {
	Name       string `json:"Name"`
	Host       string `json:"Host"`       // Running | Stopped | Nonexistent
	Daemon     string `json:"Daemon"`     // Running | Stopped
	APIServer  string `json:"APIServer"`  // Running | Stopped | Error
	Kubeconfig string `json:"Kubeconfig"` // Configured | Misconfigured | Stopped
	Endpoint   string `json:"Endpoint,omitempty"`
}

// Exit codes like minikube's: one bit per part that is not running.
const (
	exitHostNotRunning    = 1
	exitClusterNotRunning = 2
	exitAPINotRunning     = 4
	exitNoProfile         = 85
)

// ExitError carries the exit code a command wants besides its message.
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// GetStatus inspects the profile's daemon, API server and kubeconfig entry.
func GetStatus(ctx context.Context, p Profile) (Status, error) {
	s := Status{Name: p.Name, Host: "Nonexistent", Daemon: "Stopped", APIServer: "Stopped", Kubeconfig: "Stopped"}
	if !p.Exists() {
		return s, errNoProfile(p)
	}
	s.Host = "Stopped"
	if _, running := DaemonRunning(p); !running {
		return s, nil
	}
	s.Host, s.Daemon = "Running", "Running"
	st, err := p.LoadState()
	if err != nil {
		s.APIServer = "Error"
		return s, nil
	}
	s.Endpoint = st.APIEndpoint
	if err := checkReadyz(ctx, p, st); err != nil {
		s.APIServer = "Error"
	} else {
		s.APIServer = "Running"
	}
	s.Kubeconfig, err = KubeconfigStatus(KubeconfigPath(), p.Name, st.APIEndpoint)
	if err != nil {
		s.Kubeconfig = "Misconfigured"
	}
	return s, nil
}

// ExitCode is the status exit code for scripts: 0 when all runs.
func (s Status) ExitCode() int {
	code := 0
	if s.Host != "Running" {
		code |= exitHostNotRunning
	}
	if s.Daemon != "Running" {
		code |= exitClusterNotRunning
	}
	if s.APIServer != "Running" {
		code |= exitAPINotRunning
	}
	return code
}

// Print writes the status as text or JSON.
func (s Status) Print(w io.Writer, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintf(w, "%s\ntype: Control Plane\nhost: %s\ndaemon: %s\napiserver: %s\nkubeconfig: %s\n",
		s.Name, s.Host, s.Daemon, s.APIServer, s.Kubeconfig)
	return err
}

// checkReadyz asks the API server's /readyz with the admin credentials.
func checkReadyz(ctx context.Context, p Profile, st State) error {
	c, err := adminClient(p, st)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, st.APIEndpoint+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("query %s/readyz: %w", st.APIEndpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s/readyz: %s", st.APIEndpoint, resp.Status)
	}
	return nil
}

func adminClient(p Profile, st State) (*http.Client, error) {
	t, err := adminTransport(p, st)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: t}, nil
}

// adminTransport authenticates as the cluster admin (O=system:masters) and
// trusts only the profile's CA.
func adminTransport(p Profile, st State) (*http.Transport, error) {
	c, err := certsFor(p, st)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(c.CACert)
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(c.AdminCert, c.AdminKey)
	if err != nil {
		return nil, fmt.Errorf("load admin certificate: %w", err)
	}
	return &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}, nil
}

// AdminAccess returns the API endpoint of a running profile and a transport
// that authenticates to it as the cluster admin, for local tools such as
// the dashboard.
func AdminAccess(p Profile) (string, http.RoundTripper, error) {
	if !p.Exists() {
		return "", nil, errNoProfile(p)
	}
	if _, running := DaemonRunning(p); !running {
		return "", nil, fmt.Errorf("profile %q is not running: nanokube start -p %s", p.Name, p.Name)
	}
	st, err := p.LoadState()
	if err != nil {
		return "", nil, fmt.Errorf("profile %q has not started yet: nanokube start -p %s", p.Name, p.Name)
	}
	t, err := adminTransport(p, st)
	if err != nil {
		return "", nil, err
	}
	return st.APIEndpoint, t, nil
}

// NodeIP returns the IP of the named node ("" = the first).
func NodeIP(p Profile, node string) (string, error) {
	if !p.Exists() {
		return "", errNoProfile(p)
	}
	st, err := p.LoadState()
	if err != nil {
		return "", fmt.Errorf("profile %q has not started yet: nanokube start -p %s", p.Name, p.Name)
	}
	for _, n := range st.Nodes {
		if node == "" || n.Name == node {
			return n.IP, nil
		}
	}
	return "", fmt.Errorf("node %q not found in profile %q: kubectl get nodes", node, p.Name)
}
