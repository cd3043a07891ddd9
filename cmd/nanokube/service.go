package main

import (
	"fmt"
	"os/exec"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/nanokube/nanokube/cluster"
)

func serviceCommand() *cli.Command {
	nsFlag := &cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: "default", Usage: "the service's namespace"}
	return &cli.Command{
		Name:      "service",
		Usage:     "print (or open) the URLs of a Service from the host",
		ArgsUsage: "NAME",
		Flags: []cli.Flag{
			nsFlag,
			&cli.BoolFlag{Name: "url", Usage: "print the URLs instead of opening a browser"},
			&cli.BoolFlag{Name: "all", Usage: "every Service of the namespace"},
		},
		Subcommands: []*cli.Command{{
			Name:  "list",
			Usage: "list the Services and their URLs",
			Flags: []cli.Flag{&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "only this namespace (default: all)"}},
			Action: func(c *cli.Context) error {
				if err := noArgs(c); err != nil {
					return err
				}
				p, err := profileOf(c)
				if err != nil {
					return err
				}
				return cluster.ListServices(c.Context, p, c.String("namespace"), c.App.Writer)
			},
		}},
		Action: func(c *cli.Context) error {
			// minikube's habit: flags after the name (`service web --url -n dev`).
			opts := serviceOpts{url: c.Bool("url"), all: c.Bool("all"), namespace: c.String("namespace")}
			args, err := opts.parse(c.Args().Slice())
			if err != nil {
				return usageError(c, err)
			}
			if (len(args) != 1 && !opts.all) || (opts.all && len(args) != 0) {
				return usageError(c, fmt.Errorf("give one service name, or --all: kubectl get svc -n %s", opts.namespace))
			}
			p, err := profileOf(c)
			if err != nil {
				return err
			}
			if opts.profile != "" {
				if err := cluster.ValidateProfileName(opts.profile); err != nil {
					return err
				}
				p = cluster.NewProfile(cluster.Home(), opts.profile)
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			urls, err := cluster.ServiceURLs(c.Context, p, opts.namespace, name, opts.all)
			if err != nil {
				return err
			}
			opener := browser()
			for _, u := range urls {
				if opts.url || opener == "" {
					fmt.Fprintln(c.App.Writer, u.URL)
					continue
				}
				fmt.Fprintf(c.App.Writer, "🎉  Opening service %s/%s in the default browser: %s\n", u.Namespace, u.Name, u.URL)
				if err := exec.Command(opener, u.URL).Run(); err != nil {
					return fmt.Errorf("open %s with %s: %w", u.URL, opener, err)
				}
			}
			return nil
		},
	}
}

type serviceOpts struct {
	url, all           bool
	namespace, profile string
}

// parse takes the flags that follow the service name.
func (o *serviceOpts) parse(args []string) ([]string, error) {
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || a == "-" {
			rest = append(rest, a)
			continue
		}
		switch name {
		case "url":
			o.url = true
		case "all":
			o.all = true
		case "n", "namespace", "p", "profile":
			if !hasValue {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("flag needs an argument: %s", a)
				}
				value = args[i+1]
				i++
			}
			if name == "n" || name == "namespace" {
				o.namespace = value
			} else {
				o.profile = value
			}
		default:
			return nil, fmt.Errorf("unknown flag %s", a)
		}
	}
	return rest, nil
}

func tunnelCommand() *cli.Command {
	return &cli.Command{
		Name:  "tunnel",
		Usage: "route the service CIDR to the cluster until interrupted (needs root)",
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			p, err := profileOf(c)
			if err != nil {
				return err
			}
			return cluster.Tunnel(c.Context, p, c.App.Writer)
		},
	}
}
