//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nanokube/nanokube/hack/testimages"
)

// dockerDir writes a build context: a two-stage Dockerfile whose FROM is
// the local busybox, the static hello server, and files .dockerignore
// must keep out (the build fails when they get in).
func dockerDir(t *testing.T, root string) string {
	t.Helper()
	dir := filepath.Join(root, "dir")
	if err := os.MkdirAll(filepath.Join(dir, "junk"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"Dockerfile": `# syntax=docker/dockerfile:1
FROM ` + busyboxRef + ` AS build
ARG MSG=nobody
COPY . /ctx
RUN test -x /ctx/server && test ! -e /ctx/secret.txt && test ! -e /ctx/junk && mkdir /out && echo "$MSG" > /out/msg

FROM ` + busyboxRef + `
COPY --from=build /out/msg /msg
COPY server /server
EXPOSE 8080
ENTRYPOINT ["/server"]
`,
		".dockerignore": "secret.txt\njunk\n",
		"secret.txt":    "not for the image\n",
		"junk/big":      strings.Repeat("x", 1<<20),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "server"), "../hack/testimages/hello")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the hello server: %v\n%s", err, out)
	}
	return dir
}

// TestIntegrationDockerEnv is the docker-env story with the real docker
// CLI: build with `docker build` into the cluster's store, run it as a
// Deployment, see it in `docker ps`, rebuild from cache, save/rmi/load,
// and --unset restores the DOCKER_HOST from before.
func TestIntegrationDockerEnv(t *testing.T) {
	l := theLab
	const p = "dock"
	work := t.TempDir()
	dockerDir(t, work)
	busybox := filepath.Join(work, "busybox.tar")
	f, err := os.Create(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := testimages.BusyboxTar(f, busyboxRef); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The scripts call `nanokube` by name, like a user's shell.
	bin := filepath.Join(work, "bin")
	os.Mkdir(bin, 0o755)
	if err := os.Symlink(l.binary, filepath.Join(bin, "nanokube")); err != nil {
		t.Fatal(err)
	}
	// A registry on a lab address that is not loopback serves a base
	// image; BuildKit reaches it over plain HTTP only with
	// --insecure-registry.
	const regIP = "10.250.0.2"
	labAddress(t, regIP)
	reg := startRegistry(t, regIP, "e2e", "s3cret")
	var base bytes.Buffer
	if err := testimages.BusyboxTar(&base, "nanokube.local/base:v1"); err != nil {
		t.Fatal(err)
	}
	reg.push(t, base.Bytes(), "public/base", "v1")
	l.startProfile(t, p, "--insecure-registry", reg.addr)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }

	// sh runs a bash script in the lab from work, with DOCKER_HOST set
	// to another daemon the way a user's shell might have it.
	const otherHost = "tcp://127.0.0.1:2375"
	sh := func(script string) result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		cmd := l.Command(ctx, "bash", "-c", "set -eo pipefail\n"+script)
		cmd.Dir = work
		cmd.Env = append(cmd.Env, "PATH="+bin+":"+os.Getenv("PATH"), "DOCKER_HOST="+otherHost)
		out, err := cmd.CombinedOutput()
		r := result{stdout: string(out)}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else if err != nil {
			r.code, r.stderr = -1, err.Error()
		}
		return r
	}
	must := func(script string) string {
		t.Helper()
		r := sh(script)
		if r.code != 0 {
			t.Fatalf("script failed:\n%s\n%s", script, r)
		}
		return r.stdout
	}
	const env = "eval $(nanokube -p " + p + " docker-env)\n"

	// The words: build, see it in docker images, run it.
	out := must(env + `test "$DOCKER_HOST" = unix:///run/nanokube/` + p + `/docker.sock
docker load -i busybox.tar
kubectl config use-context ` + p + ` >/dev/null
docker build -t hello:1 --build-arg MSG=nanokube ./dir && docker images | grep hello && kubectl create deployment hello --image=hello:1`)
	for _, want := range []string{"Loaded image: " + busyboxRef, "Successfully tagged hello:1", "deployment.apps/hello created"} {
		if !strings.Contains(out, want) {
			t.Errorf("build script output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^hello\s+1\s+[0-9a-f]{12}\s`).MatchString(out) {
		t.Errorf("docker images shows no hello:1 row:\n%s", out)
	}
	k("rollout", "status", "deploy/hello", "--timeout=90s")
	if pol := k("get", "deploy", "hello", "-o", "jsonpath={.spec.template.spec.containers[0].imagePullPolicy}"); pol != "IfNotPresent" {
		t.Errorf("imagePullPolicy = %q, want IfNotPresent", pol)
	}
	pod := strings.TrimPrefix(strings.TrimSpace(k("get", "pods", "-l", "app=hello", "-o", "name")), "pod/")
	ip := k("get", "pod", pod, "-o", "jsonpath={.status.podIP}")
	get := func(ip string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r := l.run(ctx, nil, "nsenter", "--net=/run/nanokube/"+p+"/netns/"+p, "--", "busybox", "wget", "-qO-", "http://"+ip+":8080/")
		if r.code != 0 {
			t.Fatalf("GET the hello pod at %s: %s", ip, r)
		}
		return r.stdout
	}
	if body := get(ip); body != "hello from nanokube\n" {
		t.Errorf("the built image served %q", body)
	}

	// docker ps shows the pod's container under its kubelet-style name.
	uid := k("get", "pod", pod, "-o", "jsonpath={.metadata.uid}")
	name := "k8s_hello_" + pod + "_default_" + uid + "_0"
	ps := must(env + `docker ps --format '{{.Names}} {{.Image}} {{.Status}}'`)
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` hello:1 Up `).MatchString(ps) {
		t.Errorf("docker ps lacks %q running hello:1:\n%s", name, ps)
	}
	if logs := must(env + "docker logs " + name); !strings.Contains(logs, "listening on :8080") {
		t.Errorf("docker logs %s = %q", name, logs)
	}
	insp := must(env + `docker image inspect -f '{{json .Config.Entrypoint}} {{json .Config.ExposedPorts}} {{.Os}}' hello:1
docker version --format '{{.Server.Os}} {{.Server.APIVersion}}'
docker info --format '{{.Driver}} {{.Images}}'`)
	for _, want := range []string{`["/server"] {"8080/tcp":{}} linux`, "linux 1.50", "overlayfs 2"} {
		if !strings.Contains(insp, want) {
			t.Errorf("inspect/version/info lack %q:\n%s", want, insp)
		}
	}

	// An unchanged context builds from the cache: same image, CACHED steps;
	// --no-cache runs them again.
	id1 := strings.TrimSpace(must(env + "docker images -q hello:1"))
	out = must(env + "docker build -t hello:1 --build-arg MSG=nanokube ./dir\ndocker images -q hello:1")
	cachedRun := regexp.MustCompile(`(?m)^#(\d+) \[build 3/3\] RUN .*\n#\d+ CACHED`)
	if !cachedRun.MatchString(out) || !strings.HasSuffix(strings.TrimSpace(out), id1) {
		t.Errorf("the second build did not reuse the cache for image %s:\n%s", id1, out)
	}
	if out := must(env + "docker build --no-cache -t hello:nocache --build-arg MSG=nanokube ./dir"); cachedRun.MatchString(out) || !strings.Contains(out, "[build 3/3] RUN") {
		t.Errorf("a --no-cache build used the cache:\n%s", out)
	}

	// -f from outside the context, --target and --label.
	df, _ := os.ReadFile(filepath.Join(work, "dir", "Dockerfile"))
	os.WriteFile(filepath.Join(work, "alt.Dockerfile"), df, 0o644)
	out = must(env + `docker build -q -f alt.Dockerfile --target build --label org.nanokube.test=e2e -t hello:stage ./dir >/dev/null
docker image inspect -f '{{json .Config.Cmd}} {{index .Config.Labels "org.nanokube.test"}}' hello:stage`)
	if want := `["sh"] e2e`; !strings.Contains(out, want) {
		t.Errorf("the build stage of alt.Dockerfile with a label: want %q in\n%s", want, out)
	}

	// Without -t the image is kept untagged (<none>), found by its ID.
	out = must(env + `id=$(docker build -q --build-arg MSG=untagged ./dir)
echo "built $id"
docker images --filter dangling=true --format '{{.Repository}}:{{.Tag}} {{.ID}}'
docker tag "$id" hello:fromid
echo "dangling after tag: $(docker images --filter dangling=true -q | wc -l)"`)
	m := regexp.MustCompile(`built sha256:([0-9a-f]{12})`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "<none>:<none> "+m[1]) || !strings.Contains(out, "dangling after tag: 0") {
		t.Errorf("an untagged build (listed as <none>, then tagged by its ID):\n%s", out)
	}

	// rmi refuses an image a running container uses; after the Deployment
	// is gone, save → rmi → load gives the same image back, and a pod runs it.
	if r := sh(env + "docker rmi hello:1"); r.code == 0 || !strings.Contains(r.stdout, "container") || !strings.Contains(r.stdout, "is using its referenced image") {
		t.Errorf("docker rmi of an image in use: %s", r)
	}
	k("delete", "deploy", "hello", "--wait=true")
	k("wait", "--for=delete", "pod/"+pod, "--timeout=60s")
	out = must(env + `docker save hello:1 -o hello.tar
docker rmi hello:1 hello:nocache hello:fromid hello:stage
if docker images --format '{{.Repository}}:{{.Tag}}' | grep -x hello:1; then echo STILL THERE; exit 1; fi
docker load -i hello.tar
docker images -q hello:1`)
	if !strings.Contains(out, "Untagged: hello:1") || !strings.Contains(out, "Deleted: sha256:"+id1) ||
		!strings.Contains(out, "Loaded image: hello:1") || !strings.HasSuffix(strings.TrimSpace(out), id1) {
		t.Errorf("save/rmi/load round trip:\n%s", out)
	}
	k("run", "hello2", "--image=hello:1", "--image-pull-policy=Never", "--port=8080")
	k("wait", "--for=condition=Ready", "pod/hello2", "--timeout=60s")
	if body := get(k("get", "pod", "hello2", "-o", "jsonpath={.status.podIP}")); body != "hello from nanokube\n" {
		t.Errorf("the re-loaded image served %q", body)
	}

	// BuildKit's own API (/grpc and /session, what buildx's docker driver
	// uses) through nanokube image build.
	out = must("nanokube -p " + p + " image build --progress=plain -t hello:2 --build-arg MSG=buildkit ./dir 2>&1\n" + env + "docker images --format '{{.Repository}}:{{.Tag}}'")
	if !strings.Contains(out, "naming to docker.io/library/hello:2") || !regexp.MustCompile(`(?m)^hello:2$`).MatchString(out) {
		t.Errorf("nanokube image build:\n%s", out)
	}
	k("run", "hello3", "--image=hello:2", "--image-pull-policy=Never", "--port=8080")
	k("wait", "--for=condition=Ready", "pod/hello3", "--timeout=60s")
	if body := get(k("get", "pod", "hello3", "-o", "jsonpath={.status.podIP}")); body != "hello from buildkit\n" {
		t.Errorf("the image from nanokube image build served %q", body)
	}

	// A FROM of the insecure registry is pulled over plain HTTP, and
	// docker info lists the registry as insecure.
	os.MkdirAll(filepath.Join(work, "fromreg"), 0o755)
	os.WriteFile(filepath.Join(work, "fromreg", "Dockerfile"), []byte("FROM "+reg.addr+"/public/base:v1\nRUN echo from-registry > /note\n"), 0o644)
	out = must(env + `docker build -t fromreg:1 ./fromreg 2>&1
docker info 2>/dev/null | grep -A2 'Insecure Registries:'`)
	if !strings.Contains(out, "Successfully tagged fromreg:1") || !regexp.MustCompile(`(?m)^\s+`+regexp.QuoteMeta(reg.addr)+`$`).MatchString(out) {
		t.Errorf("a build FROM the insecure registry %s:\n%s", reg.addr, out)
	}
	k("run", "fromreg", "--image=fromreg:1", "--image-pull-policy=Never", "--restart=Never", "--command", "--", "cat", "/note")
	k("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/fromreg", "--timeout=60s")
	if logs := k("logs", "fromreg"); logs != "from-registry\n" {
		t.Errorf("the image built FROM the registry printed %q", logs)
	}

	// nanokube image build --push sends it to that registry with the
	// docker CLI's credentials ($DOCKER_CONFIG), over plain HTTP too.
	os.MkdirAll(filepath.Join(work, "dockercfg"), 0o700)
	os.WriteFile(filepath.Join(work, "dockercfg", "config.json"), []byte(`{"auths":{"`+reg.addr+`":{"auth":"ZTJlOnMzY3JldA=="}}}`), 0o600) // e2e:s3cret
	pushed := reg.addr + "/team/pushed:v1"
	if r := sh("nanokube -p " + p + " image build --push -t " + pushed + " ./fromreg 2>&1"); r.code == 0 || !strings.Contains(r.stdout, "401") && !strings.Contains(r.stdout, "unauthorized") {
		t.Errorf("a push without credentials: %s", r)
	}
	out = must("DOCKER_CONFIG=$PWD/dockercfg nanokube -p " + p + " image build --progress=plain --push -t " + pushed + " ./fromreg 2>&1")
	// The registry holds the manifest the build exported, under the tag.
	var tagged, built []byte
	if m := regexp.MustCompile(`exporting manifest (sha256:[0-9a-f]{64})`).FindStringSubmatch(out); m != nil {
		reg.mu.Lock()
		tagged, built = reg.manifests["team/pushed:v1"].data, reg.manifests["team/pushed@"+m[1]].data
		reg.mu.Unlock()
	}
	if len(tagged) == 0 || !bytes.Equal(tagged, built) {
		t.Errorf("image build --push did not leave the built manifest in the registry:\n%s", out)
	}

	// A FROM that is neither in the store nor reachable fails, saying so.
	os.MkdirAll(filepath.Join(work, "bad"), 0o755)
	os.WriteFile(filepath.Join(work, "bad", "Dockerfile"), []byte("FROM nanokube.local/nope:1\nRUN true\n"), 0o644)
	if r := sh(env + "docker build -t bad ./bad"); r.code == 0 || !strings.Contains(r.stdout, "nanokube.local/nope:1") || !strings.Contains(r.stdout, "not in the cluster's image store") {
		t.Errorf("a build FROM a missing image: %s", r)
	}
	// What docker-env does not serve says so.
	if r := sh(env + "docker run --rm hello:1"); r.code == 0 || !strings.Contains(r.stdout, "not supported by nanokube's docker-env") {
		t.Errorf("docker run: %s", r)
	}

	// docker builder prune empties BuildKit's cache.
	if out := must(env + "docker builder prune -af"); !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("docker builder prune:\n%s", out)
	}

	// --unset restores the DOCKER_HOST from before docker-env.
	out = must(env + `eval $(nanokube -p ` + p + ` docker-env --unset)
echo "DOCKER_HOST=$DOCKER_HOST active=${NANOKUBE_ACTIVE_DOCKERD-unset} saved=${NANOKUBE_EXISTING_DOCKER_HOST-unset}"`)
	if want := "DOCKER_HOST=" + otherHost + " active=unset saved=unset"; !strings.Contains(out, want) {
		t.Errorf("after --unset: %q, want %q", out, want)
	}
}
