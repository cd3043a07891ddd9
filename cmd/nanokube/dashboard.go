package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"

	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/nanokube/nanokube/cluster"
	"github.com/nanokube/nanokube/dashboard"
)

func dashboardCommand() *cli.Command {
	return &cli.Command{
		Name:  "dashboard",
		Usage: "serve the cluster's web dashboard on 127.0.0.1 until interrupted",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "url", Usage: "print the dashboard's URL instead of opening a browser"},
			&cli.IntFlag{Name: "port", Usage: "local port to listen on (0: any free port)"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			port := c.Int("port")
			if port < 0 || port > 65535 {
				return usageError(c, fmt.Errorf("--port %d is not a TCP port (0-65535)", port))
			}
			p, err := profileOf(c)
			if err != nil {
				return err
			}
			endpoint, transport, err := cluster.AdminAccess(p)
			if err != nil {
				return err
			}
			srv, err := dashboard.New(dashboard.Config{Upstream: endpoint, Transport: transport})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				return fmt.Errorf("listen on 127.0.0.1:%d: %w: pick another with --port", port, err)
			}
			url := "http://" + ln.Addr().String() + "/"
			g, ctx := errgroup.WithContext(c.Context)
			g.Go(func() error { return srv.Serve(ctx, ln) })
			switch opener := browser(); {
			case c.Bool("url"):
				fmt.Fprintln(c.App.Writer, url)
			case opener == "":
				fmt.Fprintf(c.App.Writer, "🎉  Dashboard at %s (no display to open a browser on; Ctrl-C to stop)\n", url)
			default:
				fmt.Fprintf(c.App.Writer, "🎉  Opening %s in your default browser... (Ctrl-C to stop)\n", url)
				g.Go(func() error { return openBrowser(ctx, c, opener, url) })
			}
			return g.Wait()
		},
	}
}

// openBrowser hands url to the desktop's opener; when that fails the URL
// printed already is the way in, so the dashboard keeps serving.
func openBrowser(ctx context.Context, c *cli.Context, opener, url string) error {
	if out, err := exec.CommandContext(ctx, opener, url).CombinedOutput(); err != nil && ctx.Err() == nil {
		fmt.Fprintf(c.App.ErrWriter, "could not open a browser (%v: %s): open %s yourself\n", err, out, url)
	}
	return nil
}
