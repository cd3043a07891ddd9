package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

var errPurgeNeedsAll = errors.New("--purge needs --all")

// commands lists every command; each lives in its own file.
func commands() []*cli.Command {
	cmds := []*cli.Command{
		startCommand(),
		stopCommand(),
		statusCommand(),
		deleteCommand(),
		ipCommand(),
		nodeCommand(),
		serviceCommand(),
		tunnelCommand(),
		logsCommand(),
		profileCommand(),
		kubectlCommand(),
		dockerEnvCommand(),
		dashboardCommand(),
		versionCommand(),
	}
	cmds = append(cmds, platformCommands()...)
	for _, c := range cmds {
		addProfileFlag(c)
	}
	return cmds
}

// addProfileFlag lets --profile/-p follow any command (`nanokube start -p
// dev`) as well as precede it.
func addProfileFlag(c *cli.Command) {
	if c.SkipFlagParsing {
		return
	}
	c.Flags = append(c.Flags, profileFlag())
	c.OnUsageError = func(ctx *cli.Context, err error, _ bool) error { return usageError(ctx, err) }
	for _, sub := range c.Subcommands {
		addProfileFlag(sub)
	}
}
