package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Environment variables that docker-env sets, saves and restores, named like
// minikube's (MINIKUBE_ACTIVE_DOCKERD, MINIKUBE_EXISTING_DOCKER_HOST).
const (
	EnvDockerHost    = "DOCKER_HOST"
	EnvActiveDockerd = "NANOKUBE_ACTIVE_DOCKERD"
	existingPrefix   = "NANOKUBE_EXISTING_"
)

// dockerDaemonEnvs are the variables of another docker daemon that
// docker-env saves (as NANOKUBE_EXISTING_<name>) and --unset restores. The
// TLS ones are also cleared: they would make the docker CLI speak TLS to
// our unix socket.
var dockerDaemonEnvs = []string{EnvDockerHost, "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"}

// DockerSocket is where the daemon of profile p serves the Docker API.
func (p Profile) DockerSocket() string { return filepath.Join(p.RunDir(), "docker.sock") }

// DockerHost is the DOCKER_HOST value for profile p.
func (p Profile) DockerHost() string { return "unix://" + p.DockerSocket() }

// Shells docker-env writes for.
var Shells = []string{"bash", "zsh", "fish", "powershell", "cmd", "tcsh", "none"}

// DockerEnvOptions says what `nanokube docker-env` prints.
type DockerEnvOptions struct {
	Profile Profile
	Shell   string // one of Shells; "" = detect from $SHELL
	Unset   bool
	JSON    bool
	Getenv  func(string) string // the caller's environment
}

// shellSyntax is how one shell sets and unsets a variable, like minikube's
// shell package.
type shellSyntax struct {
	set   func(k, v string) string
	unset func(k string) string
	hint  func(cmd string) string
}

var shellSyntaxes = map[string]shellSyntax{
	"bash": {
		set:   func(k, v string) string { return "export " + k + "=\"" + v + "\"\n" },
		unset: func(k string) string { return "unset " + k + ";\n" },
		hint: func(cmd string) string {
			return "\n# To point your shell to nanokube's docker-daemon, run:\n# eval $(" + cmd + ")\n"
		},
	},
	"fish": {
		set:   func(k, v string) string { return "set -gx " + k + " \"" + v + "\";\n" },
		unset: func(k string) string { return "set -e " + k + ";\n" },
		hint: func(cmd string) string {
			return "\n# To point your shell to nanokube's docker-daemon, run:\n# " + cmd + " | source\n"
		},
	},
	"powershell": {
		set:   func(k, v string) string { return "$Env:" + k + " = \"" + v + "\"\n" },
		unset: func(k string) string { return "Remove-Item Env:\\\\" + k + "\n" },
		hint: func(cmd string) string {
			return "# To point your shell to nanokube's docker-daemon, run:\n# & " + cmd + " --shell powershell | Invoke-Expression\n"
		},
	},
	"cmd": {
		set:   func(k, v string) string { return "SET " + k + "=" + v + "\n" },
		unset: func(k string) string { return "SET " + k + "=\n" },
		hint: func(cmd string) string {
			return "REM To point your shell to nanokube's docker-daemon, run:\nREM @FOR /f \"tokens=*\" %i IN ('" + cmd + " --shell cmd') DO @%i\n"
		},
	},
	"tcsh": {
		set:   func(k, v string) string { return "setenv " + k + " \"" + v + "\";\n" },
		unset: func(k string) string { return "unsetenv " + k + ";\n" },
		hint: func(cmd string) string {
			return "\n: \"To point your shell to nanokube's docker-daemon, run:\"\n: eval `" + cmd + "`\n"
		},
	},
	"none": {
		set:   func(k, v string) string { return k + "=" + v + "\n" },
		unset: func(k string) string { return k + "\n" },
		hint:  func(string) string { return "" },
	},
}

func init() { shellSyntaxes["zsh"] = shellSyntaxes["bash"] }

// DetectShell names the shell of $SHELL the way docker-env knows it (bash
// when unknown, like minikube).
func DetectShell(shellPath string) string {
	switch base := filepath.Base(shellPath); base {
	case "fish", "zsh", "tcsh", "bash":
		return base
	case "csh":
		return "tcsh"
	case "pwsh", "powershell", "pwsh.exe", "powershell.exe":
		return "powershell"
	case "cmd.exe":
		return "cmd"
	}
	return "bash"
}

// envChange is one variable docker-env sets (Value) or unsets (Unset).
type envChange struct {
	Key   string
	Value string
	Unset bool
}

// dockerEnvChanges computes what to set or unset, in output order.
func dockerEnvChanges(o DockerEnvOptions) []envChange {
	get := o.Getenv
	var out []envChange
	if o.Unset {
		// Like minikube: variables with nothing saved are unset first, then
		// the saved ones are restored and their copies dropped.
		var restore []envChange
		var dropSaved []envChange
		for _, k := range dockerDaemonEnvs {
			if v := get(existingPrefix + k); v != "" {
				restore = append(restore, envChange{Key: k, Value: v})
				dropSaved = append(dropSaved, envChange{Key: existingPrefix + k, Unset: true})
			} else if k == EnvDockerHost {
				out = append(out, envChange{Key: k, Unset: true})
			}
		}
		out = append(out, envChange{Key: EnvActiveDockerd, Unset: true})
		out = append(out, dropSaved...)
		return append(out, restore...)
	}
	for _, k := range dockerDaemonEnvs[1:] {
		if get(k) != "" {
			out = append(out, envChange{Key: k, Unset: true})
		}
	}
	out = append(out, envChange{Key: EnvDockerHost, Value: o.Profile.DockerHost()})
	// Save another daemon's settings once: not when docker-env is already
	// in effect (eval twice, or switching profiles).
	if get(EnvActiveDockerd) == "" {
		for _, k := range dockerDaemonEnvs {
			if v := get(k); v != "" {
				out = append(out, envChange{Key: existingPrefix + k, Value: v})
			}
		}
	}
	return append(out, envChange{Key: EnvActiveDockerd, Value: o.Profile.Name})
}

// WriteDockerEnv writes the script (or JSON) of `nanokube docker-env`.
func WriteDockerEnv(w io.Writer, o DockerEnvOptions) error {
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	changes := dockerEnvChanges(o)
	if o.JSON {
		m := map[string]*string{}
		for _, c := range changes {
			if c.Unset {
				m[c.Key] = nil
			} else {
				v := c.Value
				m[c.Key] = &v
			}
		}
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	sh := o.Shell
	if sh == "" {
		sh = DetectShell(o.Getenv("SHELL"))
	}
	syn, ok := shellSyntaxes[sh]
	if !ok {
		return fmt.Errorf("unknown shell %q: use one of %s", sh, strings.Join(Shells, ", "))
	}
	var b strings.Builder
	for _, c := range changes {
		if c.Unset {
			b.WriteString(syn.unset(c.Key))
		} else {
			b.WriteString(syn.set(c.Key, c.Value))
		}
	}
	if !o.Unset {
		b.WriteString(syn.hint("nanokube -p " + o.Profile.Name + " docker-env"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
