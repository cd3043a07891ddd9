package main

import (
	"github.com/urfave/cli/v2"

	"github.com/nanokube/nanokube/cluster"
)

func stopCommand() *cli.Command {
	return &cli.Command{
		Name:  "stop",
		Usage: "stop the cluster, keeping its data",
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			p, err := profileOf(c)
			if err != nil {
				return err
			}
			return cluster.Stop(c.Context, p, c.App.Writer)
		},
	}
}
