//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/nanokube/nanokube/cluster"
	"github.com/nanokube/nanokube/runtime"
)

func imageCommand() *cli.Command {
	return &cli.Command{
		Name:  "image",
		Usage: "manage the images of the cluster's container store",
		Subcommands: []*cli.Command{
			imageBuildCommand(),
			{
				Name:      "load",
				Usage:     "import an image archive (docker save or OCI) into the cluster: nanokube image load FILE|-",
				ArgsUsage: "FILE|-",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageError(c, fmt.Errorf("expected one FILE or -"))
					}
					var r io.Reader = os.Stdin
					if path := c.Args().First(); path != "-" {
						f, err := os.Open(path)
						if err != nil {
							return fmt.Errorf("open image archive: %w", err)
						}
						defer f.Close()
						r = f
					}
					return withRuntime(c, func(ctx context.Context, rt *runtime.ContainerdRuntime) error {
						imgs, err := rt.ImportImage(ctx, r)
						if err != nil {
							return err
						}
						for _, i := range imgs {
							fmt.Fprintf(c.App.Writer, "Loaded image: %s\n", i.Ref)
						}
						return nil
					})
				},
			},
			{
				Name:    "ls",
				Aliases: []string{"list"},
				Usage:   "list the cluster's images",
				Action: func(c *cli.Context) error {
					return withRuntime(c, func(ctx context.Context, rt *runtime.ContainerdRuntime) error {
						imgs, err := rt.ListImages(ctx)
						if err != nil {
							return err
						}
						tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
						fmt.Fprintln(tw, "IMAGE\tID\tSIZE")
						for _, i := range imgs {
							id := i.Digest
							if len(id) > 19 {
								id = id[7:19]
							}
							fmt.Fprintf(tw, "%s\t%s\t%.1fMB\n", i.Ref, id, float64(i.Size)/1e6)
						}
						return tw.Flush()
					})
				},
			},
			{
				Name:      "rm",
				Usage:     "remove images: nanokube image rm REF…",
				ArgsUsage: "REF…",
				Action: func(c *cli.Context) error {
					if c.NArg() == 0 {
						return usageError(c, fmt.Errorf("expected at least one image reference"))
					}
					return withRuntime(c, func(ctx context.Context, rt *runtime.ContainerdRuntime) error {
						for _, ref := range c.Args().Slice() {
							if err := rt.RemoveImage(ctx, ref); err != nil {
								return fmt.Errorf("remove %s: %w", ref, err)
							}
							fmt.Fprintf(c.App.Writer, "Deleted: %s\n", runtime.NormalizeRef(ref))
						}
						return nil
					})
				},
			},
		},
	}
}

// withRuntime connects to the running profile's containerd.
func withRuntime(c *cli.Context, fn func(context.Context, *runtime.ContainerdRuntime) error) error {
	p, err := profileOf(c)
	if err != nil {
		return err
	}
	if _, running := cluster.DaemonRunning(p); !running {
		return fmt.Errorf("profile %q is not running: nanokube start -p %s", p.Name, p.Name)
	}
	cfg, err := p.LoadConfig()
	if err != nil {
		return err
	}
	addr := cfg.ContainerdAddress
	if addr == "" {
		addr = runtime.SocketPath(filepath.Join(p.RunDir(), "containerd"))
	}
	cd, err := runtime.StartContainerd(c.Context, runtime.ContainerdConfig{Address: addr})
	if err != nil {
		return err
	}
	defer cd.Client().Close()
	return fn(c.Context, runtime.New(cd.Client(), runtime.Namespace(p.Name)))
}
