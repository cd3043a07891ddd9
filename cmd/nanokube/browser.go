package main

import (
	"os"
	"os/exec"
	"runtime"
)

// browser is the command that opens a URL, "" when there is no display
// to open it on.
func browser() string {
	name := "xdg-open"
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "linux":
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return ""
		}
	default:
		return ""
	}
	if _, err := exec.LookPath(name); err != nil {
		return ""
	}
	return name
}
