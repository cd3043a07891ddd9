package cluster

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestDockerEnvGolden compares docker-env's output for every shell, with
// and without --unset and a DOCKER_HOST to save, to checked-in files.
func TestDockerEnvGolden(t *testing.T) {
	p := NewProfile("/home/dev/.nanokube", "dock")
	envs := map[string]map[string]string{
		"fresh":    {},
		"existing": {"DOCKER_HOST": "tcp://192.168.49.2:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/home/dev/.minikube/certs"},
		// docker-env already in effect: nothing is saved a second time.
		"active": {"DOCKER_HOST": "unix:///run/nanokube/other/docker.sock", "NANOKUBE_ACTIVE_DOCKERD": "other", "NANOKUBE_EXISTING_DOCKER_HOST": "tcp://10.0.0.1:2375"},
	}
	for _, sh := range Shells {
		for envName, env := range envs {
			for _, unset := range []bool{false, true} {
				name := sh + "-" + envName
				if unset {
					name += "-unset"
				}
				t.Run(name, func(t *testing.T) {
					golden(t, name, DockerEnvOptions{Profile: p, Shell: sh, Unset: unset, Getenv: envFor(p, env, unset)})
				})
			}
		}
	}
	for envName, env := range envs {
		for _, unset := range []bool{false, true} {
			name := "json-" + envName
			if unset {
				name += "-unset"
			}
			t.Run(name, func(t *testing.T) {
				golden(t, name, DockerEnvOptions{Profile: p, JSON: true, Unset: unset, Getenv: envFor(p, env, unset)})
			})
		}
	}
}

// envFor is the environment docker-env sees: for --unset, the one after
// `eval $(nanokube docker-env)` ran in env.
func envFor(p Profile, env map[string]string, unset bool) func(string) string {
	if unset {
		env = apply(env, DockerEnvOptions{Profile: p})
	}
	return func(k string) string { return env[k] }
}

// apply returns env after evaluating docker-env's output for o.
func apply(env map[string]string, o DockerEnvOptions) map[string]string {
	o.Getenv = func(k string) string { return env[k] }
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	for _, c := range dockerEnvChanges(o) {
		if c.Unset {
			delete(out, c.Key)
		} else {
			out[c.Key] = c.Value
		}
	}
	return out
}

// TestDockerEnvUnsetRestores: eval of docker-env, then of --unset, gives
// back the environment from before, including another daemon's settings.
func TestDockerEnvUnsetRestores(t *testing.T) {
	p := NewProfile("/h", "dock")
	for _, env := range []map[string]string{
		{},
		{"DOCKER_HOST": "tcp://192.168.49.2:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/certs", "PATH": "/bin"},
	} {
		on := apply(env, DockerEnvOptions{Profile: p})
		if on["DOCKER_HOST"] != "unix:///run/nanokube/dock/docker.sock" || on["NANOKUBE_ACTIVE_DOCKERD"] != "dock" || on["DOCKER_TLS_VERIFY"] != "" {
			t.Errorf("after docker-env in %v: %v", env, on)
		}
		// A second eval (or another profile's) keeps the saved settings.
		on = apply(on, DockerEnvOptions{Profile: p})
		if off := apply(on, DockerEnvOptions{Profile: p, Unset: true}); !reflect.DeepEqual(off, env) {
			t.Errorf("docker-env then --unset in %v gives %v", env, off)
		}
	}
}

func golden(t *testing.T, name string, o DockerEnvOptions) {
	t.Helper()
	var b bytes.Buffer
	if err := WriteDockerEnv(&b, o); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "docker-env", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (go test ./cluster/ -run DockerEnv -update writes it): %v", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("docker-env output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestDetectShell(t *testing.T) {
	for in, want := range map[string]string{"/bin/bash": "bash", "/usr/bin/zsh": "zsh", "/usr/bin/fish": "fish", "/bin/csh": "tcsh",
		"/usr/bin/pwsh": "powershell", "": "bash", "/bin/sh": "bash"} {
		if got := DetectShell(in); got != want {
			t.Errorf("DetectShell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDockerEnvUnknownShell(t *testing.T) {
	err := WriteDockerEnv(&bytes.Buffer{}, DockerEnvOptions{Profile: NewProfile("/h", "p"), Shell: "ksh"})
	if err == nil || err.Error() != `unknown shell "ksh": use one of bash, zsh, fish, powershell, cmd, tcsh, none` {
		t.Errorf("err = %v", err)
	}
}
