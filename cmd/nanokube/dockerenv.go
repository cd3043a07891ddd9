package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/nanokube/nanokube/cluster"
)

func dockerEnvCommand() *cli.Command {
	return &cli.Command{
		Name:  "docker-env",
		Usage: "point the docker CLI at the cluster's image store: eval $(nanokube docker-env)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "shell", Usage: "shell syntax: " + strings.Join(cluster.Shells, ", ") + " (default: from $SHELL)"},
			&cli.BoolFlag{Name: "unset", Aliases: []string{"u"}, Usage: "unset the variables instead, restoring a saved DOCKER_HOST"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text (a shell script) or json"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			out := c.String("output")
			if out != "text" && out != "json" {
				return usageError(c, fmt.Errorf("invalid --output %q (text or json)", out))
			}
			if sh := c.String("shell"); sh != "" && !slices.Contains(cluster.Shells, sh) {
				return usageError(c, fmt.Errorf("unknown --shell %q (%s)", sh, strings.Join(cluster.Shells, ", ")))
			}
			p, err := profileOf(c)
			if err != nil {
				return err
			}
			if !c.Bool("unset") {
				if !p.Exists() {
					return fmt.Errorf("profile %q does not exist: nanokube start -p %s", p.Name, p.Name)
				}
				if _, running := cluster.DaemonRunning(p); !running {
					return fmt.Errorf("profile %q is not running: nanokube start -p %s", p.Name, p.Name)
				}
			}
			return cluster.WriteDockerEnv(c.App.Writer, cluster.DockerEnvOptions{
				Profile: p, Shell: c.String("shell"), Unset: c.Bool("unset"), JSON: out == "json", Getenv: os.Getenv,
			})
		},
	}
}
