package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/nanokube/nanokube/cluster"
)

func ipCommand() *cli.Command {
	return &cli.Command{
		Name:  "ip",
		Usage: "print a node's IP address",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "node", Aliases: []string{"n"}, Usage: "node name (default: the first node)"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			p, err := profileOf(c)
			if err != nil {
				return err
			}
			ip, err := cluster.NodeIP(p, c.String("node"))
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, ip)
			return nil
		},
	}
}
