package main

import (
	"github.com/urfave/cli/v2"

	"github.com/nanokube/nanokube/cluster"
)

func deleteCommand() *cli.Command {
	return &cli.Command{
		Name:  "delete",
		Usage: "delete the cluster and everything it made",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "delete every profile"},
			&cli.BoolFlag{Name: "purge", Usage: "with --all, also remove the nanokube home directory"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			exe, err := executable()
			if err != nil {
				return err
			}
			if c.Bool("purge") && !c.Bool("all") {
				return usageError(c, errPurgeNeedsAll)
			}
			if c.Bool("all") {
				return cluster.DeleteAll(c.Context, cluster.Home(), exe, c.Bool("purge"), c.App.Writer)
			}
			p, err := profileOf(c)
			if err != nil {
				return err
			}
			return cluster.Delete(c.Context, p, exe, c.App.Writer)
		},
	}
}
