package agent

import (
	"encoding/base64"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nanokube/nanokube/runtime"
)

func TestKeyringMatchesLikeKubelet(t *testing.T) {
	auth := func(u, p string) string { return base64.StdEncoding.EncodeToString([]byte(u + ":" + p)) }
	var k keyring
	if err := k.add(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "json"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{
			"registry.example.com:5000": {"auth": "` + auth("port", "1") + `"},
			"registry.example.com:5000/team": {"username": "team", "password": "2"},
			"*.corp.example": {"username": "glob", "password": "3"},
			"https://index.docker.io/v1/": {"username": "hub", "password": "4"}}}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := k.add(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Type: corev1.SecretTypeDockercfg,
		Data: map[string][]byte{corev1.DockerConfigKey: []byte(`{"127.0.0.1:5000": {"auth": "` + auth("legacy", "5") + `", "email": "a@b"}}`)}}); err != nil {
		t.Fatal(err)
	}
	users := func(image string) []string {
		var out []string
		for _, a := range k.lookup(image) {
			out = append(out, a.Username)
		}
		return out
	}
	for image, want := range map[string][]string{
		"registry.example.com:5000/team/app:v1":  {"team", "port"}, // most specific first
		"registry.example.com:5000/other/app":    {"port"},
		"registry.example.com/team/app":          nil, // the port must match
		"registry.example.com:5000/teamwork/app": {"port"},
		"a.corp.example/app@sha256:abc":          {"glob"},
		"a.b.corp.example/app":                   nil, // a glob matches one label
		"busybox":                                {"hub"},
		"docker.io/library/busybox:1":            {"hub"},
		"127.0.0.1:5000/app:v1":                  {"legacy"},
		"quay.io/app":                            nil,
	} {
		if got := users(image); !reflect.DeepEqual(got, want) {
			t.Errorf("lookup(%q) = %v, want %v", image, got, want)
		}
	}
	if got := k.lookup("127.0.0.1:5000/app"); !reflect.DeepEqual(got, []runtime.Auth{{Username: "legacy", Password: "5"}}) {
		t.Errorf("dockercfg auth = %+v", got)
	}
	if err := k.add(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "opaque"}, Data: map[string][]byte{"x": nil}}); err == nil {
		t.Error("a secret without docker config was accepted")
	}
}
