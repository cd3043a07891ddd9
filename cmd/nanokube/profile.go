package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/nanokube/nanokube/cluster"
)

func profileCommand() *cli.Command {
	return &cli.Command{
		Name:  "profile",
		Usage: "list the cluster profiles",
		Subcommands: []*cli.Command{{
			Name:  "list",
			Usage: "list profiles with their state",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table or json"},
			},
			Action: func(c *cli.Context) error {
				infos, err := cluster.ListProfileInfo(c.Context, cluster.Home())
				if err != nil {
					return err
				}
				switch c.String("output") {
				case "json":
					return printJSON(c.App.Writer, infos)
				case "table":
				default:
					return usageError(c, fmt.Errorf("invalid --output %q (table or json)", c.String("output")))
				}
				if len(infos) == 0 {
					fmt.Fprintln(c.App.Writer, "🤹  No profiles: nanokube start creates one")
					return nil
				}
				tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "PROFILE\tDRIVER\tNODES\tIP\tSTATUS")
				for _, i := range infos {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", i.Name, i.Driver, i.Nodes, i.IP, i.Status)
				}
				return tw.Flush()
			},
		}},
	}
}
