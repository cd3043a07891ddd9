package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"
)

var errDaemonExited = errors.New("daemon exited before the cluster was ready")

// StartOptions are the choices of `nanokube start`. Zero values take the
// defaults; on an existing profile the stored choices win.
type StartOptions struct {
	Home              string
	Profile           string
	Driver            string // netns (default) | host
	Nodes             int
	Ephemeral         bool
	ContainerdAddress string
	DNSUpstream       []string
	HostAccess        bool
	NetworkBackend    string // vxlan (default) | host-gw
	Runtime           string // "" or "containerd" (default) | fake (hidden, for benchmarks)
	// PprofAddr: the daemon serves net/http/pprof there (hidden, for
	// profiling; not kept in the profile).
	PprofAddr  string
	Executable string // the nanokube binary to run as the daemon
	Out        io.Writer
	// ExtraConfig: component.key=value settings, like minikube's --extra-config.
	ExtraConfig []string
	// InsecureRegistries: host:port registries reached over plain HTTP or
	// unverified TLS.
	InsecureRegistries []string
}

// Start creates or resumes the profile's cluster and returns when it is
// usable: the daemon reports every node Ready, DNS answering and the default
// ServiceAccount present.
func Start(ctx context.Context, o StartOptions) error {
	begin := time.Now()
	if err := ValidateProfileName(o.Profile); err != nil {
		return err
	}
	if err := requireRoot(); err != nil {
		return err
	}
	p := NewProfile(o.Home, o.Profile)
	if pid, running := DaemonRunning(p); running {
		fmt.Fprintf(o.Out, "🟢  nanokube profile %q is already running (pid %d)\n", p.Name, pid)
		return nil
	}
	cfg, created, err := prepareConfig(p, o)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(o.Out, "😄  Creating nanokube cluster %q (driver %s, %d node(s))\n", p.Name, cfg.Driver, cfg.Nodes)
	} else {
		nodes := cfg.Nodes
		if st, err := p.LoadState(); err == nil && len(st.Nodes) > 0 {
			nodes = len(st.Nodes) // nodes added with `node add` come back too
		}
		fmt.Fprintf(o.Out, "🔄  Resuming nanokube cluster %q (driver %s, %d node(s))\n", p.Name, cfg.Driver, nodes)
	}
	if err := spawnDaemon(ctx, p, o.Executable, o.PprofAddr, o.Out, begin); err != nil {
		return err
	}
	st, err := p.LoadState()
	if err != nil {
		return fmt.Errorf("read cluster state: %w", err)
	}
	if err := writeKubeconfig(p, st); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "  ✓ %-44s %6s\n", "Configured kubectl context "+p.Name, formatElapsed(time.Since(begin)))
	fmt.Fprintf(o.Out, "🏄  Done! kubectl now uses the %q context (API %s, %d node(s)) in %s\n",
		p.Name, st.APIEndpoint, len(st.Nodes), formatElapsed(time.Since(begin)))
	return nil
}

func prepareConfig(p Profile, o StartOptions) (Config, bool, error) {
	if p.Exists() {
		cfg, err := p.LoadConfig()
		if err != nil {
			return cfg, false, fmt.Errorf("load profile %q: %w", p.Name, err)
		}
		return cfg, false, nil
	}
	cfg := Config{
		Name:               p.Name,
		Driver:             o.Driver,
		Nodes:              o.Nodes,
		Ephemeral:          o.Ephemeral,
		APIServerPort:      8443,
		ContainerdAddress:  o.ContainerdAddress,
		DNSUpstream:        o.DNSUpstream,
		HostAccess:         o.HostAccess,
		NetworkBackend:     o.NetworkBackend,
		InsecureRegistries: o.InsecureRegistries,
		CreatedAt:          time.Now().UTC().Truncate(time.Second),
	}
	switch o.Runtime {
	case "", "containerd":
	case RuntimeFake:
		// No containers, so no pod netns either: the host driver's single node.
		cfg.Runtime, cfg.Driver = RuntimeFake, "host"
	default:
		return cfg, false, fmt.Errorf("unknown runtime %q: use containerd or fake", o.Runtime)
	}
	if cfg.Driver == "" {
		cfg.Driver = "netns"
	}
	if cfg.Driver != "netns" && cfg.Driver != "host" {
		return cfg, false, fmt.Errorf("unknown driver %q: use --driver=netns or --driver=host", cfg.Driver)
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = 1
	}
	if cfg.NetworkBackend == "" {
		cfg.NetworkBackend = "vxlan"
	}
	if cfg.NetworkBackend != "vxlan" && cfg.NetworkBackend != "host-gw" {
		return cfg, false, fmt.Errorf("unknown --network-backend %q: use vxlan or host-gw", cfg.NetworkBackend)
	}
	if cfg.Nodes < 1 || cfg.Nodes > 32 {
		return cfg, false, fmt.Errorf("--nodes=%d is out of range: use 1 to 32", cfg.Nodes)
	}
	if cfg.Driver == "host" && cfg.Nodes != 1 {
		return cfg, false, fmt.Errorf("the host driver runs one node: drop --nodes or use --driver=netns")
	}
	extra, err := ParseExtraConfig(o.ExtraConfig)
	if err != nil {
		return cfg, false, err
	}
	cfg.ExtraConfig = extra
	for _, r := range cfg.InsecureRegistries {
		if r == "" || strings.ContainsAny(r, " \t") {
			return cfg, false, fmt.Errorf("invalid --insecure-registry %q: give host or host:port", r)
		}
	}
	for _, u := range cfg.DNSUpstream {
		if _, _, err := net.SplitHostPort(u); err != nil && net.ParseIP(u) == nil {
			return cfg, false, fmt.Errorf("invalid --dns-upstream %q: give an IP or IP:port", u)
		}
	}
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return cfg, false, fmt.Errorf("create profile directory: %w", err)
	}
	if err := p.SaveConfig(cfg); err != nil {
		return cfg, false, fmt.Errorf("save profile config: %w", err)
	}
	return cfg, true, nil
}

// spawnDaemon starts `nanokube daemon` detached in its own session, with its
// output appended to daemon.log, and relays its progress report.
func spawnDaemon(ctx context.Context, p Profile, exe, pprofAddr string, out io.Writer, begin time.Time) error {
	logf, err := os.OpenFile(p.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open daemon log: %w", err)
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("create progress pipe: %w", err)
	}
	defer pr.Close()
	args := []string{"daemon", "--profile", p.Name}
	if pprofAddr != "" {
		args = append(args, "--pprof-addr", pprofAddr)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "NANOKUBE_HOME="+p.Home, fmt.Sprintf("NANOKUBE_PROGRESS_FD=%d", ProgressFD))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{pw} // fd 3 = ProgressFD
	cmd.SysProcAttr = detachedAttr()
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		pw.Close()
		return fmt.Errorf("start daemon: %w", err)
	}
	pw.Close()
	// The daemon lives on after we return; release our handle so it is not
	// left a zombie child of a long-lived caller.
	if err := cmd.Process.Release(); err != nil {
		return fmt.Errorf("release daemon process: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- readProgress(pr, out, begin) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		pr.Close()
		<-done
		return fmt.Errorf("start interrupted: %w (the daemon keeps starting; nanokube stop to end it)", ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("%w\n%s", err, logTail(p.LogFile(), 15))
	}
	return nil
}

func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "last lines of " + path + ":\n  " + strings.Join(lines, "\n  ")
}

func requireRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("nanokube must run as root: try sudo")
	}
	return nil
}

// DaemonRunning reports whether the profile's daemon holds its lock, and its pid.
func DaemonRunning(p Profile) (int, bool) {
	if _, err := os.Stat(p.Dir); err != nil {
		return 0, false
	}
	l, ok, err := TryLock(p.LockFile())
	if err != nil {
		return 0, false
	}
	if ok {
		l.Release()
		return 0, false
	}
	return readPid(p), true
}

func readPid(p Profile) int {
	b, err := os.ReadFile(p.PidFile())
	if err != nil {
		return 0
	}
	var pid int
	fmt.Sscanf(strings.TrimSpace(string(b)), "%d", &pid)
	return pid
}
