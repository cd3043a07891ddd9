package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ShortNodeName is how minikube names a node in its messages: "m02" for
// <profile>-m02 (the first node keeps the profile's name).
func ShortNodeName(profile, node string) string {
	if s, ok := strings.CutPrefix(node, profile+"-"); ok {
		return s
	}
	return node
}

// ListNodes returns the profile's nodes with their addresses, from the
// state the daemon last wrote (a stopped profile lists them too).
func ListNodes(p Profile) ([]NodeState, error) {
	if !p.Exists() {
		return nil, errNoProfile(p)
	}
	st, err := p.LoadState()
	if err != nil {
		return nil, fmt.Errorf("profile %q has not started yet: nanokube start -p %s", p.Name, p.Name)
	}
	return st.Nodes, nil
}

// AddNodes asks the running daemon for count more worker nodes and prints
// its steps; it returns when they are Ready.
func AddNodes(ctx context.Context, p Profile, count int, out io.Writer) error {
	if count < 1 {
		return fmt.Errorf("--count=%d: add at least 1 node", count)
	}
	if err := runningDaemon(p); err != nil {
		return err
	}
	begin := time.Now()
	what := "a node"
	if count > 1 {
		what = fmt.Sprintf("%d nodes", count)
	}
	fmt.Fprintf(out, "😄  Adding %s to cluster %s as [worker]\n", what, p.Name)
	nodes, err := control(ctx, p, http.MethodPost, "/nodes?count="+fmt.Sprint(count), out, begin)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		fmt.Fprintf(out, "🏄  Successfully added %s to %s!\n", ShortNodeName(p.Name, n), p.Name)
	}
	return nil
}

// DeleteNode asks the running daemon to drain and remove a worker node,
// named in full or minikube's short way ("m02").
func DeleteNode(ctx context.Context, p Profile, name string, out io.Writer) error {
	if err := runningDaemon(p); err != nil {
		return err
	}
	nodes, err := ListNodes(p)
	if err != nil {
		return err
	}
	full := ""
	for _, n := range nodes {
		if n.Name == name || n.Name == p.Name+"-"+name {
			full = n.Name
		}
	}
	if full == "" {
		return fmt.Errorf("node %q not found in profile %q: nanokube node list -p %s", name, p.Name, p.Name)
	}
	begin := time.Now()
	short := ShortNodeName(p.Name, full)
	fmt.Fprintf(out, "🔥  Deleting node %s from cluster %s\n", short, p.Name)
	if _, err := control(ctx, p, http.MethodDelete, "/nodes/"+url.PathEscape(full), out, begin); err != nil {
		return err
	}
	fmt.Fprintf(out, "💀  Node %s was successfully deleted.\n", short)
	return nil
}

func runningDaemon(p Profile) error {
	if !p.Exists() {
		return errNoProfile(p)
	}
	if _, running := DaemonRunning(p); !running {
		return fmt.Errorf("profile %q is not running: nanokube start -p %s first", p.Name, p.Name)
	}
	return nil
}

// control sends one request to the daemon's control socket and relays
// the steps it reports; it returns the nodes named in the last line.
func control(ctx context.Context, p Profile, method, path string, out io.Writer, begin time.Time) ([]string, error) {
	sock := p.ControlSocket()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequestWithContext(ctx, method, "http://nanokube"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("talk to the daemon of profile %q at %s: %w", p.Name, sock, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("daemon of profile %q: %s", p.Name, strings.TrimSpace(string(b)))
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var ev Progress
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("read the daemon's answer: %w", err)
		}
		switch {
		case ev.Error != "":
			return ev.Nodes, errors.New(ev.Error)
		case ev.Ready:
			return ev.Nodes, nil
		case ev.Step != "":
			fmt.Fprintf(out, "  ✓ %-52s %6s\n", ev.Step, formatElapsed(time.Since(begin)))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the daemon's answer: %w", err)
	}
	return nil, fmt.Errorf("the daemon of profile %q closed the control connection before it finished (nanokube logs -p %s)", p.Name, p.Name)
}
