//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/nanokube/nanokube/runtime"
)

func imageLsCommand() *cli.Command {
	return &cli.Command{
		Name:    "ls",
		Aliases: []string{"list"},
		Usage:   "list the cluster's images",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "table", Usage: "table, short (one reference a line) or json"},
		},
		Action: func(c *cli.Context) error {
			format := c.String("format")
			if format != "table" && format != "short" && format != "json" {
				return usageError(c, fmt.Errorf("unknown --format %q: use table, short or json", format))
			}
			return withRuntime(c, func(ctx context.Context, rt *runtime.ContainerdRuntime) error {
				imgs, err := rt.ListImages(ctx)
				if err != nil {
					return fmt.Errorf("list images: %w", err)
				}
				sort.Slice(imgs, func(a, b int) bool { return imgs[a].Ref < imgs[b].Ref })
				var rows []imageRow
				for _, i := range imgs {
					repo, tag := splitRef(i.Ref)
					rows = append(rows, imageRow{Repository: repo, Tag: tag, ID: i.Digest, Size: i.Size})
				}
				switch format {
				case "short":
					for _, i := range imgs {
						fmt.Fprintln(c.App.Writer, i.Ref)
					}
					return nil
				case "json":
					enc := json.NewEncoder(c.App.Writer)
					enc.SetIndent("", "  ")
					if rows == nil {
						rows = []imageRow{}
					}
					return enc.Encode(rows)
				}
				return writeImageTable(c.App.Writer, rows)
			})
		},
	}
}

func imagePullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "pull an image from its registry into the cluster: nanokube image pull REF",
		ArgsUsage: "REF",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "insecure-registry", Usage: "also reach this registry (host:port) over plain HTTP or unverified TLS; repeatable"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError(c, fmt.Errorf("expected one image reference"))
			}
			p, err := profileOf(c)
			if err != nil {
				return err
			}
			cfg, err := p.LoadConfig()
			if err != nil {
				return err
			}
			insecure := append(append([]string{}, cfg.InsecureRegistries...), c.StringSlice("insecure-registry")...)
			ref := c.Args().First()
			return withRuntime(c, func(ctx context.Context, rt *runtime.ContainerdRuntime) error {
				img, err := rt.Pull(ctx, ref, runtime.PullOptions{Insecure: insecure})
				if err != nil {
					return fmt.Errorf("pull %s: %w", ref, err)
				}
				fmt.Fprintf(c.App.Writer, "Pulled image: %s (%s, %s)\n", img.Ref, shortID(img.Digest), humanSize(img.Size))
				return nil
			})
		},
	}
}

func imageTagCommand() *cli.Command {
	return &cli.Command{
		Name:      "tag",
		Usage:     "give an image another name: nanokube image tag SRC DST",
		ArgsUsage: "SRC DST",
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageError(c, fmt.Errorf("expected SRC and DST"))
			}
			return withRuntime(c, func(ctx context.Context, rt *runtime.ContainerdRuntime) error {
				img, err := rt.TagImage(ctx, c.Args().Get(0), c.Args().Get(1))
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "Tagged %s as %s\n", runtime.NormalizeRef(c.Args().Get(0)), img.Ref)
				return nil
			})
		},
	}
}

func imageSaveCommand() *cli.Command {
	return &cli.Command{
		Name:      "save",
		Usage:     "write an image as an archive (OCI and docker save layout): nanokube image save IMAGE FILE|-",
		ArgsUsage: "IMAGE FILE|-",
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageError(c, fmt.Errorf("expected IMAGE and FILE (or - for standard output)"))
			}
			ref, path := c.Args().Get(0), c.Args().Get(1)
			return withRuntime(c, func(ctx context.Context, rt *runtime.ContainerdRuntime) error {
				var w io.Writer = c.App.Writer
				var f *os.File
				if path != "-" {
					var err error
					if f, err = os.CreateTemp(dirOf(path), ".nanokube-save-*"); err != nil {
						return fmt.Errorf("create %s: %w", path, err)
					}
					defer os.Remove(f.Name())
					defer f.Close()
					w = f
				}
				if err := rt.SaveImage(ctx, w, ref); err != nil {
					return err
				}
				if f == nil {
					return nil
				}
				if err := f.Close(); err != nil {
					return fmt.Errorf("write %s: %w", path, err)
				}
				if err := os.Rename(f.Name(), path); err != nil {
					return fmt.Errorf("write %s: %w", path, err)
				}
				fmt.Fprintf(c.App.ErrWriter, "Saved %s to %s\n", runtime.NormalizeRef(ref), path)
				return nil
			})
		},
	}
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i+1]
	}
	return "."
}
