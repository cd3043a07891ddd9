package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/nanokube/nanokube/cluster"
)

func imageBuildCommand() *cli.Command {
	return &cli.Command{
		Name:      "build",
		Usage:     "build a Dockerfile into the cluster's image store: nanokube image build -t NAME DIR",
		ArgsUsage: "DIR",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "tag", Aliases: []string{"t"}, Usage: "image name (NAME[:TAG]), repeatable"},
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "the Dockerfile (default: DIR/Dockerfile)"},
			&cli.StringSliceFlag{Name: "build-arg", Usage: "build argument KEY=VALUE, repeatable"},
			&cli.StringSliceFlag{Name: "label", Usage: "image label KEY=VALUE, repeatable"},
			&cli.StringFlag{Name: "target", Usage: "the stage to build"},
			&cli.BoolFlag{Name: "no-cache", Usage: "do not use the build cache"},
			&cli.BoolFlag{Name: "pull", Usage: "pull base images from their registry even when they are in the store"},
			&cli.BoolFlag{Name: "push", Usage: "push the image to its registry after the build (credentials from the docker CLI's config)"},
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress output: auto, plain, tty or quiet"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the image ID"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError(c, fmt.Errorf("expected one DIR (the build context)"))
			}
			args, err := keyValues(c.StringSlice("build-arg"), "--build-arg")
			if err != nil {
				return usageError(c, err)
			}
			labels, err := keyValues(c.StringSlice("label"), "--label")
			if err != nil {
				return usageError(c, err)
			}
			progress := c.String("progress")
			if !slices.Contains([]string{"auto", "plain", "tty", "quiet"}, progress) {
				return usageError(c, fmt.Errorf("invalid --progress %q (auto, plain, tty or quiet)", progress))
			}
			if c.Bool("quiet") {
				progress = "quiet"
			}
			p, err := profileOf(c)
			if err != nil {
				return err
			}
			id, err := cluster.ImageBuild(c.Context, cluster.ImageBuildOptions{
				Profile: p, Dir: c.Args().First(), Dockerfile: c.String("file"), Tags: c.StringSlice("tag"),
				BuildArgs: args, Labels: labels, Target: c.String("target"), NoCache: c.Bool("no-cache"), Pull: c.Bool("pull"), Push: c.Bool("push"),
				Progress: progress, Out: c.App.ErrWriter,
			})
			if err != nil {
				return err
			}
			if c.Bool("quiet") {
				fmt.Fprintln(c.App.Writer, id)
			}
			return nil
		},
	}
}

// keyValues parses repeated KEY=VALUE flags.
func keyValues(list []string, flag string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: use KEY=VALUE", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}
