//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
			imageLsCommand(),
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
			imagePullCommand(),
			imageTagCommand(),
			imageSaveCommand(),
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
