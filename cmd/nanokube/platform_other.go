//go:build !linux

package main

import "github.com/urfave/cli/v2"

// platformCommands: the daemon runs only on Linux (on macOS inside a VM).
func platformCommands() []*cli.Command { return nil }
