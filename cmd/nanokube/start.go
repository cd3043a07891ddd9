package main

import (
	"github.com/urfave/cli/v2"

	"github.com/nanokube/nanokube/cluster"
)

func startCommand() *cli.Command {
	return &cli.Command{
		Name:  "start",
		Usage: "create or resume a cluster and point kubectl at it",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "driver", Value: "netns", Usage: "netns (a network namespace per node) or host (no namespaces, API on 127.0.0.1)"},
			&cli.IntFlag{Name: "nodes", Aliases: []string{"n"}, Value: 1, Usage: "number of nodes"},
			&cli.BoolFlag{Name: "ephemeral", Usage: "skip fsync of the store (for throw-away CI clusters)"},
			&cli.StringFlag{Name: "containerd-address", Usage: "use this containerd socket instead of a managed containerd"},
			&cli.StringSliceFlag{Name: "dns-upstream", Usage: "upstream DNS servers for names outside the cluster (default: the host's)"},
			&cli.BoolFlag{Name: "host-access", Value: true, Usage: "route the pod and service ranges from the host"},
			&cli.StringSliceFlag{Name: "extra-config", Usage: "a component setting, component.key=value (e.g. controller-manager.node-monitor-grace-period=20s, kubelet.image-gc-high-threshold=90)"},
			&cli.StringFlag{Name: "runtime", Value: "containerd", Hidden: true, Usage: "containerd, or fake (in-memory containers for benchmarks; implies --driver=host)"},
			&cli.StringFlag{Name: "pprof-addr", Hidden: true, Usage: "the daemon serves net/http/pprof on this address (e.g. 127.0.0.1:6060)"},
			&cli.StringSliceFlag{Name: "insecure-registry", Usage: "a registry (host:port) that pulls and builds reach over plain HTTP or unverified TLS; repeatable"},
			&cli.StringFlag{Name: "network-backend", Value: "vxlan", Usage: "how nodes reach each other's pods: vxlan (flannel's overlay) or host-gw (routes over the profile bridge)"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			p, err := profileOf(c)
			if err != nil {
				return err
			}
			exe, err := executable()
			if err != nil {
				return err
			}
			return cluster.Start(c.Context, cluster.StartOptions{
				Home:               p.Home,
				Profile:            p.Name,
				Driver:             c.String("driver"),
				Nodes:              c.Int("nodes"),
				Ephemeral:          c.Bool("ephemeral"),
				ContainerdAddress:  c.String("containerd-address"),
				DNSUpstream:        c.StringSlice("dns-upstream"),
				HostAccess:         c.Bool("host-access"),
				ExtraConfig:        c.StringSlice("extra-config"),
				NetworkBackend:     c.String("network-backend"),
				Runtime:            c.String("runtime"),
				PprofAddr:          c.String("pprof-addr"),
				InsecureRegistries: c.StringSlice("insecure-registry"),
				Executable:         exe,
				Out:                c.App.Writer,
			})
		},
	}
}
