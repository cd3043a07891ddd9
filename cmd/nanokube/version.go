package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/nanokube/nanokube/version"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the nanokube and Kubernetes versions",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "short", Usage: "print only the nanokube version"},
		},
		Action: func(c *cli.Context) error {
			if c.Bool("short") {
				fmt.Fprintln(c.App.Writer, version.Version)
				return nil
			}
			fmt.Fprintf(c.App.Writer, "nanokube version: %s\n", version.Version)
			if version.GitCommit != "" {
				fmt.Fprintf(c.App.Writer, "commit: %s\n", version.GitCommit)
			}
			fmt.Fprintf(c.App.Writer, "kubernetes version: %s\n", version.Kubernetes())
			return nil
		},
	}
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
