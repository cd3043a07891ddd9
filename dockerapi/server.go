//go:build linux

package dockerapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	corev1 "k8s.io/api/core/v1"

	"github.com/nanokube/nanokube/runtime"
)

// API versions served; the docker CLI negotiates down to APIVersion.
const (
	APIVersion    = "1.50"
	MinAPIVersion = "1.24"
)

// Config is what the Docker API is built from.
type Config struct {
	Containerd  *client.Client             // the cluster's containerd
	Runtime     *runtime.ContainerdRuntime // the same store, for image import
	Address     string                     // containerd's socket, for BuildKit's worker
	Namespace   string                     // containerd namespace of the profile
	Snapshotter string                     // the snapshotter pods use (built images are unpacked into it)
	Root        string                     // BuildKit's state (cache, history)
	Name        string                     // the profile, reported as the daemon's name
	Version     string                     // nanokube's version
	// InsecureRegistries (host:port) that builds reach over plain HTTP or
	// unverified TLS (nanokube start --insecure-registry).
	InsecureRegistries []string
	// Pod returns a pod by namespace and name, for container names, restart
	// counts and start times.
	Pod func(namespace, name string) (*corev1.Pod, bool)
	// Logs writes a container's output, like `kubectl logs`.
	Logs func(ctx context.Context, pod *corev1.Pod, container string, opts *corev1.PodLogOptions, w io.Writer) error
	Log  *slog.Logger
}

// Server is the Docker API of one cluster.
type Server struct {
	cfg     Config
	builder *Builder
	log     *slog.Logger
}

// New returns the server; nothing heavy happens until the first request
// that needs it (BuildKit starts on the first build).
func New(cfg Config) (*Server, error) {
	if cfg.Containerd == nil || cfg.Namespace == "" {
		return nil, errors.New("dockerapi: a containerd client and namespace are required")
	}
	if cfg.Snapshotter == "" {
		cfg.Snapshotter = "overlayfs"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Root == "" {
		return nil, errors.New("dockerapi: a root directory for BuildKit is required")
	}
	// Contexts of builds a killed daemon did not finish.
	os.RemoveAll(filepath.Join(cfg.Root, "contexts"))
	s := &Server{cfg: cfg, log: cfg.Log}
	s.builder = NewBuilder(BuilderConfig{
		Address: cfg.Address, Namespace: cfg.Namespace, Snapshotter: cfg.Snapshotter, Root: cfg.Root, Log: cfg.Log,
		InsecureRegistries: cfg.InsecureRegistries,
	})
	return s, nil
}

// Builder is the server's (lazily started) BuildKit.
func (s *Server) Builder() *Builder { return s.builder }

// Serve answers on lis until ctx ends, then closes the builder.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(shutdownCtx)
		cancel()
		// Hijacked connections (/grpc, /session, streaming builds) end
		// with ctx; Serve has returned ErrServerClosed.
		err = <-errc
	}
	if cerr := s.builder.Close(); cerr != nil {
		s.log.Error("close BuildKit", "err", cerr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

var versionPrefix = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

// Handler routes the API, with or without the /v1.NN version prefix.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if m := versionPrefix.FindStringSubmatch(path); m != nil {
			if err := checkVersion(m[1]); err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			path = m[2]
		}
		w.Header().Set("Api-Version", APIVersion)
		w.Header().Set("Server", "nanokube/"+s.cfg.Version+" (linux)")
		w.Header().Set("Docker-Experimental", "false")
		w.Header().Set("Ostype", "linux")
		switch path {
		case "/build", "/build/prune", "/grpc", "/session":
			// BuildKit's requests must not carry our containerd namespace:
			// it would reach BuildKit as incoming gRPC metadata and make
			// its containerd client skip its own namespace header.
		default:
			r = r.WithContext(namespaces.WithNamespace(r.Context(), s.cfg.Namespace))
		}
		s.route(w, r, path)
	})
}

func checkVersion(v string) error {
	if versionLess(APIVersion, v) {
		return fmt.Errorf("client version %s is too new. Maximum supported API version is %s", v, APIVersion)
	}
	if versionLess(v, MinAPIVersion) {
		return fmt.Errorf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", v, MinAPIVersion)
	}
	return nil
}

// versionLess compares "major.minor" API versions.
func versionLess(a, b string) bool {
	pa, pb := strings.SplitN(a, ".", 2), strings.SplitN(b, ".", 2)
	for i := 0; i < 2; i++ {
		x, _ := strconv.Atoi(at(pa, i))
		y, _ := strconv.Atoi(at(pb, i))
		if x != y {
			return x < y
		}
	}
	return false
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, path string) {
	m := r.Method
	get := m == http.MethodGet || m == http.MethodHead
	switch {
	case path == "/_ping" && get:
		s.ping(w, r)
	case path == "/version" && get:
		s.version(w, r)
	case path == "/info" && get:
		s.info(w, r)
	case path == "/images/json" && get:
		s.listImages(w, r)
	case path == "/images/load" && m == http.MethodPost:
		s.loadImages(w, r)
	case path == "/images/get" && get:
		s.saveImages(w, r, r.URL.Query()["names"])
	case path == "/build" && m == http.MethodPost:
		s.build(w, r)
	case path == "/build/prune" && m == http.MethodPost:
		s.buildPrune(w, r)
	case path == "/grpc" && m == http.MethodPost:
		s.grpc(w, r)
	case path == "/session" && m == http.MethodPost:
		s.session(w, r)
	case path == "/containers/json" && get:
		s.listContainers(w, r)
	case strings.HasPrefix(path, "/images/"):
		name := strings.TrimPrefix(path, "/images/")
		switch {
		case strings.HasSuffix(name, "/json") && get:
			s.inspectImage(w, r, strings.TrimSuffix(name, "/json"))
		case strings.HasSuffix(name, "/history") && get:
			s.imageHistory(w, r, strings.TrimSuffix(name, "/history"))
		case strings.HasSuffix(name, "/tag") && m == http.MethodPost:
			s.tagImage(w, r, strings.TrimSuffix(name, "/tag"))
		case strings.HasSuffix(name, "/get") && get:
			s.saveImages(w, r, []string{strings.TrimSuffix(name, "/get")})
		case m == http.MethodDelete:
			s.removeImage(w, r, name)
		default:
			notSupported(w, r, path)
		}
	case strings.HasPrefix(path, "/containers/"):
		rest := strings.TrimPrefix(path, "/containers/")
		id, what, _ := strings.Cut(rest, "/")
		switch {
		case what == "json" && get:
			s.inspectContainer(w, r, id)
		case what == "logs" && get:
			s.containerLogs(w, r, id)
		default:
			notSupported(w, r, path)
		}
	default:
		notSupported(w, r, path)
	}
}

// notSupported answers every endpoint outside the subset.
func notSupported(w http.ResponseWriter, r *http.Request, path string) {
	writeError(w, http.StatusNotImplemented, fmt.Sprintf("%s %s is not supported by nanokube's docker-env (it serves build, images, ps, logs, tag, rmi, load, save, version and info)", r.Method, path))
}

// apiError is an error with the HTTP status it maps to.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errNotFound(format string, args ...any) error {
	return &apiError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

func errBadRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func errConflict(format string, args ...any) error {
	return &apiError{http.StatusConflict, fmt.Sprintf(format, args...)}
}

func errNotImplemented(format string, args ...any) error {
	return &apiError{http.StatusNotImplemented, fmt.Sprintf(format, args...)}
}

// fail answers err with its status (500 unless it is an apiError).
func fail(w http.ResponseWriter, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeError(w, ae.code, ae.msg)
		return
	}
	writeError(w, http.StatusInternalServerError, err.Error())
}

// writeError writes Docker's error body: {"message": "..."}.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// boolParam reads a Docker boolean query parameter ("1", "true", "True").
func boolParam(r *http.Request, name string) bool {
	v := strings.ToLower(r.URL.Query().Get(name))
	return v != "" && v != "0" && v != "false" && v != "no"
}
