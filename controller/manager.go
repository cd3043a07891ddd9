// Package controller holds the controllers of the cluster, one per file,
// each built from a Config (New) and run until its context ends (Run). They
// talk to the API only through client-go, like kube-controller-manager.
package controller

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
)

// ManagerConfig is what every controller is built from.
type ManagerConfig struct {
	Client   kubernetes.Interface
	Metadata metadata.Interface
	Log      *slog.Logger
	// RootCA is the cluster CA published as kube-root-ca.crt.
	RootCA []byte
}

// Manager runs every controller over one shared informer factory.
type Manager struct {
	cfg       ManagerConfig
	informers informers.SharedInformerFactory
	runners   []func(context.Context) error
}

// NewManager builds the controllers.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{cfg: cfg, informers: informers.NewSharedInformerFactory(cfg.Client, 0)}
	ns, err := NewNamespace(NamespaceConfig{Client: cfg.Client, Metadata: cfg.Metadata, Informers: m.informers, Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("namespace controller: %w", err)
	}
	sa, err := NewServiceAccount(ServiceAccountConfig{Client: cfg.Client, Informers: m.informers, Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("serviceaccount controller: %w", err)
	}
	ca, err := NewRootCAPublisher(RootCAConfig{Client: cfg.Client, Informers: m.informers, CA: cfg.RootCA, Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("root CA publisher: %w", err)
	}
	m.runners = []func(context.Context) error{ns.Run, sa.Run, ca.Run}
	return m, nil
}

// Run starts the informers and every controller; it returns when ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, run := range m.runners {
		g.Go(func() error { return run(ctx) })
	}
	m.informers.Start(ctx.Done())
	err := g.Wait()
	m.informers.Shutdown()
	return err
}

// retryDelay is how long a failed work item waits before its next try.
const retryDelay = time.Second
