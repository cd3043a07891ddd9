package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/urfave/cli/v2"

	"github.com/nanokube/nanokube/cluster"
)

func kubectlCommand() *cli.Command {
	return &cli.Command{
		Name:            "kubectl",
		Usage:           "run the system kubectl against this profile: nanokube kubectl -- get pods",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			p, err := profileOf(c)
			if err != nil {
				return err
			}
			if !p.Exists() {
				return fmt.Errorf("profile %q does not exist: nanokube start -p %s", p.Name, p.Name)
			}
			path, err := exec.LookPath("kubectl")
			if err != nil {
				return errors.New("kubectl not found in PATH: install kubectl (https://kubernetes.io/docs/tasks/tools/)")
			}
			args := c.Args().Slice()
			if len(args) > 0 && args[0] == "--" {
				args = args[1:]
			}
			cmd := exec.CommandContext(c.Context, path, append([]string{"--context", p.Name, "--kubeconfig", cluster.KubeconfigPath()}, args...)...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, c.App.Writer, c.App.ErrWriter
			err = cmd.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return &cluster.ExitError{Code: ee.ExitCode()}
			}
			return err
		},
	}
}
