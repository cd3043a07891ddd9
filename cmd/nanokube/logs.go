package main

import (
	"github.com/urfave/cli/v2"

	"github.com/nanokube/nanokube/cluster"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:  "logs",
		Usage: "print the daemon's log",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines"},
			&cli.IntFlag{Name: "length", Aliases: []string{"n"}, Value: 0, Usage: "print only the last N lines (0 = all)"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			p, err := profileOf(c)
			if err != nil {
				return err
			}
			return cluster.Logs(c.Context, p, c.App.Writer, c.Int("length"), c.Bool("follow"))
		},
	}
}
