package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/nanokube/nanokube/cluster"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the state of the cluster (exit code: 0 when running)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			out := c.String("output")
			if out != "text" && out != "json" {
				return usageError(c, fmt.Errorf("invalid --output %q (text or json)", out))
			}
			p, err := profileOf(c)
			if err != nil {
				return err
			}
			s, err := cluster.GetStatus(c.Context, p)
			if err != nil {
				return &cluster.ExitError{Code: 85, Msg: "❌  " + err.Error()}
			}
			if err := s.Print(c.App.Writer, out == "json"); err != nil {
				return err
			}
			if code := s.ExitCode(); code != 0 {
				return &cluster.ExitError{Code: code}
			}
			return nil
		},
	}
}
