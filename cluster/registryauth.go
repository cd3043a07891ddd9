package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/session/auth"
	"google.golang.org/grpc"
)

// dockerAuths are the registry credentials of the docker CLI's config
// file ($DOCKER_CONFIG/config.json, else ~/.docker/config.json), served to
// BuildKit through the build session as buildctl and buildx do. Only the
// inline "auths" entries: credential helpers are not run.
type dockerAuths struct {
	auth.UnimplementedAuthServer // tokens: BuildKit fetches them itself with the credentials
	creds                        map[string]login
}

// login is a user and secret (password or identity token).
type login struct{ user, secret string }

type dockerConfigEntry struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
}

// loadDockerAuths reads the config; a missing file means no credentials.
func loadDockerAuths() (*dockerAuths, error) {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return &dockerAuths{}, nil
		}
		dir = filepath.Join(home, ".docker")
	}
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &dockerAuths{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read docker config: %w", err)
	}
	var cfg struct {
		Auths map[string]dockerConfigEntry `json:"auths"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	a := &dockerAuths{creds: map[string]login{}}
	for key, e := range cfg.Auths {
		user, secret := e.Username, e.Password
		if e.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, fmt.Errorf("%s: auth of %s: %w", path, key, err)
			}
			user, secret, _ = strings.Cut(string(dec), ":")
		}
		if e.IdentityToken != "" {
			user, secret = "", e.IdentityToken
		}
		a.creds[registryHostOf(key)] = login{user: user, secret: secret}
	}
	return a, nil
}

// registryHostOf turns a config key (host, https://host/v1/, …) into the
// host BuildKit asks for; Docker Hub's key is registry-1.docker.io there.
func registryHostOf(key string) string {
	h := strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	if h == "index.docker.io" || h == "docker.io" {
		return "registry-1.docker.io"
	}
	return h
}

func (a *dockerAuths) Register(s *grpc.Server) { auth.RegisterAuthServer(s, a) }

// Credentials answers BuildKit's request for a registry's login; none
// known is an empty (anonymous) answer.
func (a *dockerAuths) Credentials(_ context.Context, req *auth.CredentialsRequest) (*auth.CredentialsResponse, error) {
	c := a.creds[req.Host]
	return &auth.CredentialsResponse{Username: c.user, Secret: c.secret}, nil
}
