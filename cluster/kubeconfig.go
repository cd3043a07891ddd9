package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeconfigPath is the file nanokube writes: the first path of
// $KUBECONFIG, else ~/.kube/config.
func KubeconfigPath() string {
	if env := os.Getenv("KUBECONFIG"); env != "" {
		for _, p := range filepath.SplitList(env) {
			if p != "" {
				return p
			}
		}
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = "/root"
	}
	return filepath.Join(home, ".kube", "config")
}

// KubeconfigEntry is one profile's cluster, user and context.
type KubeconfigEntry struct {
	Name, Server              string
	CAData, CertData, KeyData []byte
}

func loadKubeconfig(path string) (*clientcmdapi.Config, error) {
	cfg, err := clientcmd.LoadFromFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return clientcmdapi.NewConfig(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}

func saveKubeconfig(path string, cfg *clientcmdapi.Config) error {
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("encode kubeconfig: %w", err)
	}
	return writeFileAtomic(path, b, 0o600)
}

// MergeKubeconfig adds or replaces the cluster, user and context called
// e.Name and makes it current; every other entry is kept.
func MergeKubeconfig(path string, e KubeconfigEntry) error {
	cfg, err := loadKubeconfig(path)
	if err != nil {
		return err
	}
	cluster := clientcmdapi.NewCluster()
	cluster.Server, cluster.CertificateAuthorityData = e.Server, e.CAData
	cluster.Extensions = nil
	user := clientcmdapi.NewAuthInfo()
	user.ClientCertificateData, user.ClientKeyData = e.CertData, e.KeyData
	ctx := clientcmdapi.NewContext()
	ctx.Cluster, ctx.AuthInfo, ctx.Namespace = e.Name, e.Name, "default"
	cfg.Clusters[e.Name], cfg.AuthInfos[e.Name], cfg.Contexts[e.Name] = cluster, user, ctx
	cfg.CurrentContext = e.Name
	return saveKubeconfig(path, cfg)
}

// RemoveKubeconfig removes the cluster, user and context called name; the
// current context is cleared if it was that one. A missing file is fine.
func RemoveKubeconfig(path, name string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	cfg, err := loadKubeconfig(path)
	if err != nil {
		return err
	}
	_, c := cfg.Clusters[name]
	_, u := cfg.AuthInfos[name]
	_, x := cfg.Contexts[name]
	if !c && !u && !x && cfg.CurrentContext != name {
		return nil
	}
	delete(cfg.Clusters, name)
	delete(cfg.AuthInfos, name)
	delete(cfg.Contexts, name)
	if cfg.CurrentContext == name {
		cfg.CurrentContext = ""
	}
	return saveKubeconfig(path, cfg)
}

// KubeconfigStatus says "Configured" when the context exists and points at
// server, else "Misconfigured".
func KubeconfigStatus(path, name, server string) (string, error) {
	cfg, err := loadKubeconfig(path)
	if err != nil {
		return "Misconfigured", err
	}
	ctx, ok := cfg.Contexts[name]
	if !ok {
		return "Misconfigured", nil
	}
	cl, ok := cfg.Clusters[ctx.Cluster]
	if !ok || cl.Server != server {
		return "Misconfigured", nil
	}
	return "Configured", nil
}
