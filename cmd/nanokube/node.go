package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/nanokube/nanokube/cluster"
)

func nodeCommand() *cli.Command {
	return &cli.Command{
		Name:  "node",
		Usage: "add, remove or list the nodes of a cluster",
		Subcommands: []*cli.Command{
			{
				Name:  "add",
				Usage: "add worker nodes to the running cluster",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "count", Value: 1, Usage: "how many nodes to add"},
				},
				Action: func(c *cli.Context) error {
					if err := noArgs(c); err != nil {
						return err
					}
					p, err := profileOf(c)
					if err != nil {
						return err
					}
					if c.Int("count") < 1 {
						return usageError(c, fmt.Errorf("--count=%d: add at least 1 node", c.Int("count")))
					}
					return cluster.AddNodes(c.Context, p, c.Int("count"), c.App.Writer)
				},
			},
			{
				Name:      "delete",
				Usage:     "drain a worker node and remove it",
				ArgsUsage: "NAME",
				Action: func(c *cli.Context) error {
					// minikube's habit: `node delete m02 -p dev` (flags after the name).
					args, profile, err := trailingProfile(c.Args().Slice())
					if err != nil {
						return usageError(c, err)
					}
					if len(args) != 1 {
						return &cluster.ExitError{Code: 64, Msg: "❌  nanokube node delete: give one node name (nanokube node list): run nanokube node delete --help"}
					}
					p, err := profileOf(c)
					if err != nil {
						return err
					}
					if profile != "" {
						if err := cluster.ValidateProfileName(profile); err != nil {
							return err
						}
						p = cluster.NewProfile(cluster.Home(), profile)
					}
					return cluster.DeleteNode(c.Context, p, args[0], c.App.Writer)
				},
			},
			{
				Name:  "list",
				Usage: "list the nodes and their IP addresses",
				Action: func(c *cli.Context) error {
					if err := noArgs(c); err != nil {
						return err
					}
					p, err := profileOf(c)
					if err != nil {
						return err
					}
					nodes, err := cluster.ListNodes(p)
					if err != nil {
						return err
					}
					for _, n := range nodes {
						fmt.Fprintf(c.App.Writer, "%s\t%s\n", n.Name, n.IP)
					}
					return nil
				},
			},
		},
	}
}

// trailingProfile takes -p/--profile given after the positional arguments
// out of args.
func trailingProfile(args []string) ([]string, string, error) {
	var rest []string
	profile := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-p" || a == "--profile" || a == "-profile":
			if i+1 >= len(args) {
				return nil, "", fmt.Errorf("flag needs an argument: %s", a)
			}
			profile = args[i+1]
			i++
		case strings.HasPrefix(a, "--profile=") || strings.HasPrefix(a, "-p="):
			profile = a[strings.IndexByte(a, '=')+1:]
		case strings.HasPrefix(a, "-") && a != "-":
			return nil, "", fmt.Errorf("unknown flag %s", a)
		default:
			rest = append(rest, a)
		}
	}
	return rest, profile, nil
}
