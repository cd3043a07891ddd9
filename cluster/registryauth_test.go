package cluster

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/buildkit/session/auth"
)

func TestDockerAuthsFromConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	if a, err := loadDockerAuths(); err != nil || len(a.creds) != 0 {
		t.Fatalf("no config file: %v, %v", a, err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{
		"10.250.0.2:5000": {"auth": "ZTJlOnMzY3JldA=="},
		"https://index.docker.io/v1/": {"username": "hub", "password": "pw"},
		"https://ghcr.io": {"identitytoken": "tok"}}}`), 0o600)
	a, err := loadDockerAuths()
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]login{
		"10.250.0.2:5000":      {user: "e2e", secret: "s3cret"},
		"registry-1.docker.io": {user: "hub", secret: "pw"},
		"ghcr.io":              {secret: "tok"},
		"other.example:5000":   {},
	} {
		got, _ := a.Credentials(t.Context(), &auth.CredentialsRequest{Host: host})
		if got.Username != want.user || got.Secret != want.secret {
			t.Errorf("Credentials(%s) = %q/%q, want %q/%q", host, got.Username, got.Secret, want.user, want.secret)
		}
	}
}
