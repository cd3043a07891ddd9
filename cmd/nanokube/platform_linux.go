//go:build linux

package main

import (
	"github.com/urfave/cli/v2"

	"github.com/nanokube/nanokube/daemon"
)

// platformCommands are the commands that run the cluster itself.
func platformCommands() []*cli.Command {
	return []*cli.Command{daemonCommand(), imageCommand()}
}

func daemonCommand() *cli.Command {
	return &cli.Command{
		Name:   "daemon",
		Usage:  "run the cluster daemon (started by nanokube start)",
		Hidden: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "cleanup", Usage: "remove everything the profile made on this host and exit"},
			&cli.StringFlag{Name: "runtime", Usage: "override the profile's runtime: containerd or fake (in-memory containers)"},
			&cli.StringFlag{Name: "pprof-addr", Usage: "serve net/http/pprof on this address"},
		},
		Action: func(c *cli.Context) error {
			p, err := profileOf(c)
			if err != nil {
				return err
			}
			if c.Bool("cleanup") {
				return daemon.Cleanup(c.Context, p)
			}
			return daemon.Main(c.Context, p, daemon.Options{Runtime: c.String("runtime"), PprofAddr: c.String("pprof-addr")})
		},
	}
}
