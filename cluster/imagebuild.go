package cluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"
)

// ImageBuildOptions is `nanokube image build`.
type ImageBuildOptions struct {
	Profile    Profile
	Dir        string   // the build context
	Dockerfile string   // default: Dir/Dockerfile
	Tags       []string // image names, normalized like docker's
	BuildArgs  map[string]string
	Labels     map[string]string
	Target     string
	NoCache    bool
	Pull       bool
	// Push sends the tagged image to its registry too, with the
	// credentials of the docker CLI's config ($DOCKER_CONFIG or
	// ~/.docker/config.json), like minikube's image build --push.
	Push     bool
	Progress string    // auto, plain, tty, quiet
	Out      io.Writer // where progress goes
}

// ImageBuild builds a Dockerfile with the daemon's BuildKit, the way
// buildx's docker driver does: BuildKit's API over the docker socket's
// /grpc endpoint and the context sent through a /session. The image lands
// in the cluster's image store under its tags; ImageBuild returns its ID.
func ImageBuild(ctx context.Context, o ImageBuildOptions) (string, error) {
	if _, running := DaemonRunning(o.Profile); !running {
		return "", fmt.Errorf("profile %q is not running: nanokube start -p %s", o.Profile.Name, o.Profile.Name)
	}
	st, err := os.Stat(o.Dir)
	if err != nil {
		return "", fmt.Errorf("build context: %w", err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("build context %s is not a directory", o.Dir)
	}
	dockerfile := o.Dockerfile
	if dockerfile == "" {
		dockerfile = filepath.Join(o.Dir, "Dockerfile")
	}
	if _, err := os.Stat(dockerfile); err != nil {
		return "", fmt.Errorf("dockerfile: %w", err)
	}
	if o.Push && len(o.Tags) == 0 {
		return "", fmt.Errorf("--push needs an image name: add -t REGISTRY/NAME[:TAG]")
	}
	var names []string
	for _, t := range o.Tags {
		n, err := reference.ParseNormalizedNamed(t)
		if err != nil {
			return "", fmt.Errorf("invalid tag %q: %w", t, err)
		}
		names = append(names, reference.TagNameOnly(n).String())
	}
	sock := o.Profile.DockerSocket()
	c, err := bkclient.New(ctx, "",
		bkclient.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return dialHijack(ctx, sock, "/grpc", "h2c", nil)
		}),
		bkclient.WithSessionDialer(func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
			return dialHijack(ctx, sock, "/session", proto, meta)
		}))
	if err != nil {
		return "", fmt.Errorf("connect to the builder: %w", err)
	}
	defer c.Close()
	ctxFS, err := fsutil.NewFS(o.Dir)
	if err != nil {
		return "", err
	}
	dfFS, err := fsutil.NewFS(filepath.Dir(dockerfile))
	if err != nil {
		return "", err
	}
	attrs := map[string]string{"filename": filepath.Base(dockerfile)}
	if o.Target != "" {
		attrs["target"] = o.Target
	}
	for k, v := range o.BuildArgs {
		attrs["build-arg:"+k] = v
	}
	for k, v := range o.Labels {
		attrs["label:"+k] = v
	}
	if o.NoCache {
		attrs["no-cache"] = ""
	}
	if o.Pull {
		attrs["image-resolve-mode"] = "pull"
	}
	// "moby" is the exporter buildx's docker driver asks for: the daemon
	// stores the image in the cluster's store, unpacked for pods.
	export := map[string]string{}
	if len(names) > 0 {
		export["name"] = strings.Join(names, ",")
	}
	if o.Push {
		export["push"] = "true"
	}
	auths, err := loadDockerAuths()
	if err != nil {
		return "", err
	}
	mode := progressui.DisplayMode(o.Progress)
	if mode == "" {
		mode = progressui.AutoMode
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	display, err := progressui.NewDisplay(out, mode)
	if err != nil {
		return "", fmt.Errorf("progress display: %w", err)
	}
	ch := make(chan *bkclient.SolveStatus)
	var res *bkclient.SolveResponse
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		res, err = c.Solve(gctx, nil, bkclient.SolveOpt{
			Frontend:      "dockerfile.v0",
			FrontendAttrs: attrs,
			LocalMounts:   map[string]fsutil.FS{"context": ctxFS, "dockerfile": dfFS},
			Exports:       []bkclient.ExportEntry{{Type: "moby", Attrs: export}},
			// Registry credentials for FROM and push, as buildctl and
			// buildx give them.
			Session: []session.Attachable{auths},
		}, ch)
		return err
	})
	g.Go(func() error {
		_, err := display.UpdateFrom(context.WithoutCancel(gctx), ch)
		return err
	})
	if err := g.Wait(); err != nil {
		return "", err
	}
	return res.ExporterResponse["containerimage.config.digest"], nil
}

// dialHijack opens an upgraded connection to an endpoint of the docker
// socket, like the docker client's DialHijack.
func dialHijack(ctx context.Context, sock, path, proto string, meta map[string][]string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", sock, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://docker"+path, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	for k, v := range meta {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", proto)
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		conn.Close()
		return nil, fmt.Errorf("POST %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	return &bufferedConn{Conn: conn, r: br}, nil
}

// bufferedConn reads what the response reader already buffered first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
