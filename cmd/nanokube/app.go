package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/nanokube/nanokube/cluster"
	"github.com/nanokube/nanokube/version"
)

// run builds the CLI, runs it and turns the error into an exit code; it is
// the only place that prints errors.
func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := newApp(os.Stdout, os.Stderr)
	err := app.RunContext(ctx, args)
	if err == nil {
		return 0
	}
	var ee *cluster.ExitError
	if errors.As(err, &ee) {
		if ee.Msg != "" {
			fmt.Fprintln(os.Stderr, ee.Msg)
		}
		return ee.Code
	}
	fmt.Fprintf(os.Stderr, "❌  %s\n", err)
	return 1
}

func newApp(out, errOut io.Writer) *cli.App {
	app := &cli.App{
		Name:    "nanokube",
		Usage:   "a local Kubernetes cluster in one binary",
		Version: version.Version,
		Flags: []cli.Flag{
			profileFlag(),
		},
		Writer:               out,
		ErrWriter:            errOut,
		HideVersion:          true,
		EnableBashCompletion: true,
		Commands:             commands(),
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageError(c, err)
		},
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(c.App.ErrWriter, "❌  unknown command %q: run nanokube help\n", name)
			os.Exit(64)
		},
	}
	return app
}

func usageError(c *cli.Context, err error) error {
	name := "nanokube"
	if c.Command != nil && c.Command.Name != "" {
		name += " " + c.Command.Name
	}
	msg := strings.TrimPrefix(err.Error(), "flag provided but not defined: ")
	if msg != err.Error() {
		msg = "unknown flag " + msg
	}
	return &cluster.ExitError{Code: 64, Msg: fmt.Sprintf("❌  %s: %s: run %s --help", name, msg, name)}
}

func profileFlag() cli.Flag {
	return &cli.StringFlag{Name: "profile", Aliases: []string{"p"}, Value: cluster.DefaultProfile, Usage: "the cluster profile to act on", EnvVars: []string{"NANOKUBE_PROFILE"}}
}

// profileOf returns the profile named by --profile, given after the
// command (`nanokube status -p dev`) or before it (`nanokube -p dev status`):
// every command also defines the flag, and its unset default must not hide
// the global one.
func profileOf(c *cli.Context) (cluster.Profile, error) {
	name := c.String("profile")
	for _, ctx := range c.Lineage() {
		if ctx.IsSet("profile") && ctx.String("profile") != "" {
			name = ctx.String("profile")
			break
		}
	}
	if err := cluster.ValidateProfileName(name); err != nil {
		return cluster.Profile{}, err
	}
	return cluster.NewProfile(cluster.Home(), name), nil
}

// noArgs rejects positional arguments for commands that take none.
func noArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError(c, fmt.Errorf("unexpected argument %q", c.Args().First()))
	}
	return nil
}

func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the nanokube binary: %w", err)
	}
	return exe, nil
}
