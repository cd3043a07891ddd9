//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanokube/nanokube/internal/satoken"
)

// waitLine runs a streaming kubectl command (logs -f, get -w) until a line
// satisfies ok, and returns that line; the deadline fails the test.
func (l *lab) waitLine(t *testing.T, profile string, timeout time.Duration, ok func(string) bool, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := l.Command(ctx, "kubectl", append([]string{"--context", profile}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if ok(line) {
			cancel()
			cmd.Wait()
			return line
		}
		seen = append(seen, line)
	}
	cmd.Wait()
	t.Fatalf("kubectl %s: no matching line within %s; saw:\n%s", strings.Join(args, " "), timeout, strings.Join(seen, "\n"))
	return ""
}

func lineHas(subs ...string) func(string) bool {
	return func(line string) bool {
		for _, s := range subs {
			if !strings.Contains(line, s) {
				return false
			}
		}
		return true
	}
}

func linePrefix(prefix string) func(string) bool {
	return func(line string) bool { return strings.HasPrefix(line, prefix) }
}

func volManifest(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "BUSYBOX", busyboxRef)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const volumesManifest = `apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data:
  greeting: hello
  app.conf: mode=dev
---
apiVersion: v1
kind: Secret
metadata: {name: app-secret}
stringData: {password: s3cr3t}
---
apiVersion: v1
kind: Pod
metadata: {name: consumer}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: BUSYBOX
    env:
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: app-config, key: greeting}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: app-secret, key: password}}}
    command:
    - sh
    - -c
    - |
      echo "env GREETING=$GREETING PASSWORD=$PASSWORD"
      ls -la /etc/secret/ /etc/secret/..data/
      touch /etc/config/new
      last=""
      while true; do
        cur="password=$(cat /etc/secret/password) conf=$(cat /etc/config/app.conf) subpath=$(cat /etc/app.conf)"
        if [ "$cur" != "$last" ]; then echo "$cur"; last="$cur"; fi
        sleep 0.2
      done
    volumeMounts:
    - {name: config, mountPath: /etc/config}
    - {name: secret, mountPath: /etc/secret}
    - {name: config, mountPath: /etc/app.conf, subPath: app.conf}
  volumes:
  - {name: config, configMap: {name: app-config}}
  - {name: secret, secret: {secretName: app-secret, defaultMode: 0400}}
---
apiVersion: v1
kind: Pod
metadata: {name: sharing}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {name: shared, emptyDir: {}}
  - {name: cache, emptyDir: {medium: Memory, sizeLimit: 16Mi}}
  containers:
  - name: writer
    image: BUSYBOX
    command: ["sh", "-c", "echo from-writer > /shared/msg; echo cached > /cache/c; exec sleep 3600"]
    volumeMounts: [{name: shared, mountPath: /shared}, {name: cache, mountPath: /cache}]
  - name: reader
    image: BUSYBOX
    command: ["sh", "-c", "until [ -f /shared/msg ] && [ -f /cache/c ]; do sleep 0.1; done; echo read $(cat /shared/msg /cache/c); echo df $(df -k /cache | tail -n 1); touch /shared/ro; exec sleep 3600"]
    volumeMounts: [{name: shared, mountPath: /shared, readOnly: true}, {name: cache, mountPath: /cache}]
---
apiVersion: v1
kind: Pod
metadata:
  name: labelled
  labels: {app: web, tier: front}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: podinfo
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: name, fieldRef: {fieldPath: metadata.name}}
      - {path: mem, resourceFieldRef: {containerName: app, resource: limits.memory, divisor: 1Mi}}
  - name: items
    configMap:
      name: app-config
      items: [{key: greeting, path: sub/greet.txt, mode: 0600}]
  containers:
  - name: app
    image: BUSYBOX
    resources: {limits: {memory: 64Mi, cpu: 250m}}
    envFrom: [{prefix: CFG_, configMapRef: {name: app-config}}]
    env:
    - {name: MEM_LIMIT, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: CPU_REQUEST, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: EXPANDED, value: "$(CFG_greeting)-$(MEM_LIMIT)-$$(kept)"}
    workingDir: /etc/podinfo
    command:
    - sh
    - -c
    - |
      echo "env mem=$MEM_LIMIT cpu=$CPU_REQUEST ip=$POD_IP cfg=$CFG_greeting expanded=$EXPANDED pwd=$(pwd)"
      echo "items $(ls -l /etc/items/sub/greet.txt | cut -c1-10) $(ls /etc/items) $(cat /etc/items/sub/greet.txt)"
      echo "name=$(cat /etc/podinfo/name) mem=$(cat /etc/podinfo/mem)"
      last=""
      while true; do
        cur="labels $(echo $(cat /etc/podinfo/labels))"
        if [ "$cur" != "$last" ]; then echo "$cur"; last="$cur"; fi
        sleep 0.2
      done
    volumeMounts: [{name: podinfo, mountPath: /etc/podinfo}, {name: items, mountPath: /etc/items}]
---
apiVersion: v1
kind: Pod
metadata: {name: tokened}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: BUSYBOX
    command:
    - sh
    - -c
    - |
      d=/var/run/secrets/kubernetes.io/serviceaccount
      echo "token $(cat $d/token)"
      echo "namespace $(cat $d/namespace)"
      ls -la $d
      cat $d/ca.crt
      echo "vault $(cat /projected/vault-token)"
      echo "projected greeting=$(cat /projected/greeting) name=$(cat /projected/name)"
      exec sleep 3600
    volumeMounts: [{name: projected, mountPath: /projected}]
  volumes:
  - name: projected
    projected:
      sources:
      - serviceAccountToken: {audience: vault, expirationSeconds: 3600, path: vault-token}
      - configMap: {name: app-config, items: [{key: greeting, path: greeting}]}
      - downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}
---
apiVersion: v1
kind: Pod
metadata: {name: runas}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000, supplementalGroups: [4000]}
  volumes: [{name: data, emptyDir: {}}]
  containers:
  - name: app
    image: BUSYBOX
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      seccompProfile: {type: RuntimeDefault}
    command:
    - sh
    - -c
    - |
      echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"
      touch /data/f
      echo "dir $(ls -lnd /data)"
      echo "file $(ls -ln /data/f)"
      touch /rootfile
      grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status
      exec sleep 3600
    volumeMounts: [{name: data, mountPath: /data}]
---
apiVersion: v1
kind: Pod
metadata: {name: caps}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: BUSYBOX
    securityContext: {capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}
    command: ["sh", "-c", "grep CapEff /proc/self/status; exec sleep 3600"]
  - name: priv
    image: BUSYBOX
    securityContext: {privileged: true}
    command: ["sh", "-c", "grep CapEff /proc/self/status; echo devices $(ls /dev | wc -l); exec sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: nonroot}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {runAsNonRoot: true}
  containers:
  - {name: app, image: BUSYBOX, command: ["sleep", "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: waiting}
spec:
  terminationGracePeriodSeconds: 1
  automountServiceAccountToken: false
  containers:
  - name: app
    image: BUSYBOX
    command: ["sh", "-c", "echo creds=$(cat /creds/token); exec sleep 3600"]
    volumeMounts: [{name: creds, mountPath: /creds}]
  volumes:
  - {name: creds, secret: {secretName: later}}
---
apiVersion: v1
kind: Pod
metadata: {name: badhost}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: app, image: BUSYBOX, command: ["sleep", "3600"], volumeMounts: [{name: host, mountPath: /host}]}
  volumes:
  - {name: host, hostPath: {path: /nonexistent-nanokube-e2e, type: Directory}}
`

// TestIntegrationVolumes: ConfigMaps and Secrets as env and as volumes
// that refresh in place (subPath mounts do not), emptyDir on disk and in
// memory, the downward API, the ServiceAccount token volume, hostPath and
// claims, the securityContext, and kubelet's errors for what cannot run.
func TestIntegrationVolumes(t *testing.T) {
	l := theLab
	const p = "vols"
	hostDir := t.TempDir() // made first, so it goes after the profile
	l.startProfile(t, p)
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	logs := func(target string, ok func(string) bool) string {
		t.Helper()
		return l.waitLine(t, p, 90*time.Second, ok, append([]string{"logs", "-f"}, strings.Fields(target)...)...)
	}
	certs := filepath.Join(l.Home, "profiles", p, "certs")

	k("apply", "-f", volManifest(t, "volumes.yaml", volumesManifest))
	k("apply", "-f", volManifest(t, "host.yaml", `apiVersion: v1
kind: Pod
metadata: {name: hostdir}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: BUSYBOX
    command: ["sh", "-c", "echo from-pod > /host/out; echo file-from-pod > /hostfile; echo written; exec sleep 3600"]
    volumeMounts: [{name: host, mountPath: /host}, {name: file, mountPath: /hostfile}]
  volumes:
  - {name: host, hostPath: {path: `+filepath.Join(hostDir, "made")+`, type: DirectoryOrCreate}}
  - {name: file, hostPath: {path: `+filepath.Join(hostDir, "made.txt")+`, type: FileOrCreate}}
`))
	k("wait", "--for=condition=Ready", "pod/consumer", "pod/sharing", "pod/labelled", "pod/tokened", "pod/runas", "pod/caps", "pod/hostdir", "--timeout=90s")

	// ConfigMap and secret as env and volumes.
	{
		logs("consumer", lineHas("env GREETING=hello PASSWORD=s3cr3t"))
		logs("consumer", lineHas("..data -> ..20"))
		if line := logs("consumer", lineHas("r--------", "password")); strings.Contains(line, "->") {
			t.Errorf("secret file line %q: want the 0400 file in ..data", line)
		}
		logs("consumer", lineHas("/etc/config/new", "Read-only file system"))
		logs("consumer", lineHas("password=s3cr3t conf=mode=dev subpath=mode=dev"))
	}

	// Secret and configMap volumes refresh in place, subPath does not.
	{
		k("apply", "-f", volManifest(t, "update.yaml", `apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data:
  greeting: hello
  app.conf: mode=prod
---
apiVersion: v1
kind: Secret
metadata: {name: app-secret}
stringData: {password: n3w}
`))
		line := logs("consumer", lineHas("password=n3w", "conf=mode=prod"))
		if !strings.Contains(line, "subpath=mode=dev") {
			t.Errorf("after the update: %q; a subPath mount keeps the old content like kubelet's", line)
		}
	}

	// EmptyDir shared between containers, memory-backed with sizeLimit.
	{
		logs("sharing -c reader", lineHas("read from-writer cached"))
		logs("sharing -c reader", lineHas("/shared/ro", "Read-only file system"))
		df := strings.Fields(logs("sharing -c reader", linePrefix("df ")))
		if len(df) < 3 || df[1] != "tmpfs" || df[2] != "16384" {
			t.Errorf("memory emptyDir: df says %v, want a 16384K tmpfs", df)
		}
	}

	// DownwardAPI volume follows label changes.
	{
		logs("labelled", lineHas("name=labelled mem=64"))
		ip := k("get", "pod", "labelled", "-o", "jsonpath={.status.podIP}")
		logs("labelled", lineHas("env mem=64 cpu=250 ip="+ip+" cfg=hello expanded=hello-64-$(kept) pwd=/etc/podinfo"))
		logs("labelled", lineHas("items -rw------- sub hello"))
		// Limits on both resources, so Guaranteed; the CPU limit is a
		// CFS quota of 25ms per 100ms period (cgroup v1 or v2).
		uid := k("get", "pod", "labelled", "-o", "jsonpath={.metadata.uid}")
		rel := filepath.Join("nanokube-"+p, p, "kubepods", "pod"+uid, uid+"-app")
		read := func(parts ...string) string {
			b, _ := os.ReadFile(filepath.Join(append([]string{"/sys/fs/cgroup"}, parts...)...))
			return strings.TrimSpace(string(b))
		}
		cpu, mem := read(rel, "cpu.max"), read(rel, "memory.max")
		if cpu == "" { // cgroup v1
			cpu, mem = read("cpu", rel, "cpu.cfs_quota_us")+" "+read("cpu", rel, "cpu.cfs_period_us"), read("memory", rel, "memory.limit_in_bytes")
		}
		if cpu != "25000 100000" || mem != "67108864" {
			t.Errorf("cgroup %s: cpu quota/period %q, memory limit %q; want 25000 100000 and 67108864", rel, cpu, mem)
		}
		if q := k("get", "pod", "labelled", "-o", "jsonpath={.status.qosClass}"); q != "Guaranteed" {
			t.Errorf("qosClass of labelled = %q, want Guaranteed", q)
		}
		logs("labelled", lineHas(`labels app="web" tier="front"`))
		k("label", "pod", "labelled", "extra=yes")
		logs("labelled", lineHas(`labels app="web" extra="yes" tier="front"`))
	}

	// Service account token volume.
	{
		vols := k("get", "pod", "tokened", "-o", "jsonpath={.spec.volumes[*].name} {.spec.containers[0].volumeMounts[*].mountPath}")
		if !strings.HasPrefix(vols, "projected kube-api-access-") || !strings.HasSuffix(vols, "/var/run/secrets/kubernetes.io/serviceaccount") {
			t.Errorf("admission added %q", vols)
		}
		logs("tokened", lineHas("-----END CERTIFICATE-----"))
		out := k("logs", "tokened")
		pub, err := os.ReadFile(filepath.Join(certs, "sa.pub"))
		if err != nil {
			t.Fatal(err)
		}
		v, err := satoken.NewVerifier(pub)
		if err != nil {
			t.Fatal(err)
		}
		var token string
		for _, line := range strings.Split(out, "\n") {
			if tok, ok := strings.CutPrefix(line, "token "); ok {
				token = tok
			}
		}
		c, err := v.Verify(token, []string{satoken.Issuer}, time.Now())
		if err != nil {
			t.Fatalf("token in the pod does not verify: %v\n%s", err, out)
		}
		uid := k("get", "pod", "tokened", "-o", "jsonpath={.metadata.uid}")
		saUID := k("get", "sa", "default", "-o", "jsonpath={.metadata.uid}")
		if c.Subject != "system:serviceaccount:default:default" || c.ServiceAccount.UID != saUID || c.Pod == nil || c.Pod.Name != "tokened" ||
			c.Pod.UID != uid || c.Node == nil || c.Node.Name != p || c.WarnAfter.IsZero() {
			t.Errorf("claims = %+v pod %+v node %+v", c, c.Pod, c.Node)
		}
		if !strings.Contains(out, "namespace default\n") || !strings.Contains(out, "..data -> ..20") || !strings.Contains(out, "token -> ..data/token") {
			t.Errorf("token volume content:\n%s", out)
		}
		ca, _ := os.ReadFile(filepath.Join(certs, "ca.crt"))
		if !strings.Contains(out, strings.TrimSpace(string(ca))) {
			t.Errorf("ca.crt in the pod is not the cluster CA")
		}

		// A projected token with its own audience and lifetime, next to
		// a configMap and the downward API.
		logs("tokened", lineHas("projected greeting=hello name=tokened"))
		var vault string
		for _, line := range strings.Split(k("logs", "tokened"), "\n") {
			if tok, ok := strings.CutPrefix(line, "vault "); ok {
				vault = tok
			}
		}
		vc, err := v.Verify(vault, []string{"vault"}, time.Now())
		if err != nil {
			t.Fatalf("projected token for audience vault: %v", err)
		}
		if vc.Expiry.Sub(vc.IssuedAt) != time.Hour || vc.Pod == nil || vc.Pod.Name != "tokened" {
			t.Errorf("projected token claims = %+v pod %+v", vc, vc.Pod)
		}
		if _, err := v.Verify(vault, []string{satoken.Issuer}, time.Now()); err == nil {
			t.Errorf("the vault token verifies for the API server's audience")
		}

		// The pod's token authenticates to the API server as its account.
		server := k("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
		asToken := func(tok string) result {
			ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
			defer cancel()
			return l.run(ctx, nil, "kubectl", "--kubeconfig=/dev/null", "--server="+server, "--certificate-authority="+filepath.Join(certs, "ca.crt"),
				"--token="+tok, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
		}
		if r := asToken(token); r.code != 0 || r.stdout != "system:serviceaccount:default:default" {
			t.Errorf("kubectl auth whoami with the pod's token: %s", r)
		}

		// kubectl create token goes through the same TokenRequest API.
		tok := strings.TrimSpace(k("create", "token", "default", "--audience=vault", "--duration=10m"))
		c, err = v.Verify(tok, []string{"vault"}, time.Now())
		if err != nil {
			t.Fatalf("kubectl create token: %v", err)
		}
		if c.Expiry.Sub(c.IssuedAt) != 10*time.Minute || c.Pod != nil {
			t.Errorf("kubectl create token claims = %+v", c)
		}
		if r := asToken(tok); r.code == 0 || !strings.Contains(r.stderr, "Unauthorized") {
			t.Errorf("a token for audience vault was accepted by the API server: %s", r)
		}
		if r := l.kubectlResult(t, p, "create", "token", "default", "--duration=1m"); r.code == 0 || !strings.Contains(r.stderr, "may not specify a duration less than 10 minutes") {
			t.Errorf("a 1m token: %s", r)
		}
	}

	// SecurityContext.
	{
		ids := logs("runas", linePrefix("uid="))
		if !strings.HasPrefix(ids, "uid=1000 gid=3000 groups=") || !strings.Contains(ids, "2000") || !strings.Contains(ids, "4000") {
			t.Errorf("id in the container: %q", ids)
		}
		dir := strings.Fields(logs("runas", linePrefix("dir ")))
		if len(dir) < 5 || dir[1] != "drwxrwsrwx" || dir[4] != "2000" {
			t.Errorf("fsGroup emptyDir: %v, want drwxrwsrwx with group 2000", dir)
		}
		file := strings.Fields(logs("runas", linePrefix("file ")))
		if len(file) < 5 || file[3] != "1000" || file[4] != "2000" {
			t.Errorf("file written in the fsGroup volume: %v, want owner 1000 group 2000", file)
		}
		logs("runas", lineHas("/rootfile", "Read-only file system"))
		// kubectl exec runs as the container's user, under the same rules.
		if out := k("exec", "runas", "--", "id", "-u"); strings.TrimSpace(out) != "1000" {
			t.Errorf("kubectl exec runas -- id -u: %q", out)
		}
		if r := l.kubectlResult(t, p, "exec", "runas", "--", "touch", "/etc/written"); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "Read-only file system") {
			t.Errorf("write to a read-only root through exec: %s", r)
		}
		logs("runas", lineHas("NoNewPrivs:", "1"))
		logs("runas", lineHas("Seccomp:", "2"))
		if caps := logs("caps -c app", linePrefix("CapEff:")); !strings.HasSuffix(caps, "0000000000000400") {
			t.Errorf("drop ALL, add NET_BIND_SERVICE: %q", caps)
		}
		// Privileged: every capability the host has (its bounding set).
		status, _ := os.ReadFile("/proc/self/status")
		var bnd string
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
				bnd = strings.TrimSpace(v)
			}
		}
		if caps := logs("caps -c priv", linePrefix("CapEff:")); bnd == "" || !strings.HasSuffix(caps, bnd) {
			t.Errorf("privileged: %q, want the host's bounding set %s", caps, bnd)
		}
		dev := strings.Fields(logs("caps -c priv", linePrefix("devices ")))
		if n, err := strconv.Atoi(dev[len(dev)-1]); err != nil || n < 30 {
			t.Errorf("privileged: %v, want the host's devices in /dev", dev)
		}

		k("wait", "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}=CreateContainerConfigError", "pod/nonroot", "--timeout=60s")
		uid := k("get", "pod", "nonroot", "-o", "jsonpath={.metadata.uid}")
		want := `container has runAsNonRoot and image will run as root (pod: "nonroot_default(` + uid + `)", container: app)`
		if msg := k("get", "pod", "nonroot", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.message}"); msg != want {
			t.Errorf("waiting message %q, want %q", msg, want)
		}
		if row := k("get", "pod", "nonroot", "--no-headers"); !strings.Contains(row, "CreateContainerConfigError") {
			t.Errorf("kubectl get pod nonroot: %q", row)
		}
		l.waitLine(t, p, 30*time.Second, lineHas("Error: "+want), "get", "events", "-w", "--field-selector", "involvedObject.name=nonroot,reason=Failed", "-o", "jsonpath={.message}{\"\\n\"}")
		if d := k("describe", "pod", "nonroot"); !strings.Contains(d, "Error: "+want) {
			t.Errorf("kubectl describe pod nonroot lacks the event:\n%s", d)
		}
	}

	// HostPath.
	{
		logs("hostdir", lineHas("written"))
		if b, err := os.ReadFile(filepath.Join(hostDir, "made", "out")); err != nil || string(b) != "from-pod\n" {
			t.Errorf("file written through the hostPath: %q %v", b, err)
		}
		if b, err := os.ReadFile(filepath.Join(hostDir, "made.txt")); err != nil || string(b) != "file-from-pod\n" {
			t.Errorf("file written through the FileOrCreate hostPath: %q %v", b, err)
		}
		l.waitLine(t, p, 60*time.Second, lineHas(`MountVolume.SetUp failed for volume "host" : hostPath type check failed: /nonexistent-nanokube-e2e is not a directory`),
			"get", "events", "-w", "--field-selector", "involvedObject.name=badhost,reason=FailedMount", "-o", "jsonpath={.message}{\"\\n\"}")
		k("wait", "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}=ContainerCreating", "pod/badhost", "--timeout=30s")
		if row := k("get", "pod", "badhost", "--no-headers"); !strings.Contains(row, "ContainerCreating") {
			t.Errorf("pod with a failing hostPath: %q", row)
		}
	}

	// Missing secret keeps the pod ContainerCreating until it exists.
	{
		l.waitLine(t, p, 60*time.Second, lineHas(`MountVolume.SetUp failed for volume "creds" : secret "later" not found`),
			"get", "events", "-w", "--field-selector", "involvedObject.name=waiting,reason=FailedMount", "-o", "jsonpath={.message}{\"\\n\"}")
		k("wait", "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}=ContainerCreating", "pod/waiting", "--timeout=30s")
		if row := k("get", "pod", "waiting", "--no-headers"); !strings.Contains(row, "ContainerCreating") {
			t.Errorf("pod waiting for its secret: %q", row)
		}
		k("create", "secret", "generic", "later", "--from-literal=token=finally")
		k("wait", "--for=condition=Ready", "pod/waiting", "--timeout=60s")
		logs("waiting", lineHas("creds=finally"))
	}

	// PersistentVolumeClaim mounts its bound volume.
	{
		k("apply", "-f", volManifest(t, "claim.yaml", `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: claim}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
  storageClassName: ""
  volumeName: pv-claim
`))
		claimUID := k("get", "pvc", "claim", "-o", "jsonpath={.metadata.uid}")
		k("apply", "-f", volManifest(t, "pv.yaml", `apiVersion: v1
kind: PersistentVolume
metadata: {name: pv-claim}
spec:
  capacity: {storage: 1Mi}
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  hostPath: {path: `+filepath.Join(hostDir, "pv")+`, type: DirectoryOrCreate}
  claimRef: {namespace: default, name: claim, uid: `+claimUID+`}
---
apiVersion: v1
kind: Pod
metadata: {name: claimer}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: BUSYBOX
    command: ["sh", "-c", "echo kept > /data/file; echo claim-written; exec sleep 3600"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - {name: data, persistentVolumeClaim: {claimName: claim}}
`))
		// The PV controller completes the binding the user started.
		k("wait", "--for=jsonpath={.status.phase}=Bound", "pvc/claim", "--timeout=30s")
		if got := k("get", "pv", "pv-claim", "-o", "jsonpath={.status.phase}"); got != "Bound" {
			t.Errorf("pv-claim phase %q, want Bound", got)
		}
		k("wait", "--for=condition=Ready", "pod/claimer", "--timeout=60s")
		logs("claimer", lineHas("claim-written"))
		if b, err := os.ReadFile(filepath.Join(hostDir, "pv", "file")); err != nil || string(b) != "kept\n" {
			t.Errorf("file written through the claim: %q %v", b, err)
		}
	}

	// Volumes go with their pod.
	{
		uid := k("get", "pod", "sharing", "-o", "jsonpath={.metadata.uid}")
		podDir := filepath.Join(l.Home, "profiles", p, "nodes", p, "pods", uid)
		if _, err := os.Stat(filepath.Join(podDir, "volumes", "kubernetes.io~empty-dir", "shared", "msg")); err != nil {
			t.Fatalf("emptyDir is not under the node's pod directory: %v", err)
		}
		if !mountedUnder(t, podDir) {
			t.Fatalf("no tmpfs under %s for the memory emptyDir", podDir)
		}
		k("delete", "pod", "sharing", "--wait=true", "--timeout=60s")
		if _, err := os.Stat(podDir); !os.IsNotExist(err) {
			t.Errorf("pod directory %s still there after the pod went: %v", podDir, err)
		}
		if mountedUnder(t, podDir) {
			t.Errorf("mounts left under %s", podDir)
		}
	}

	// Kill -9 keeps volumes, updates still arrive.
	{
		uid := k("get", "pod", "consumer", "-o", "jsonpath={.metadata.uid}")
		podDir := filepath.Join(l.Home, "profiles", p, "nodes", p, "pods", uid)
		pid := daemonPid(t, p)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitGone(t, pid)
		l.nanokube(t, "start", "-p", p)
		if !mountedUnder(t, podDir) {
			t.Errorf("the secret volume's tmpfs did not survive the restart")
		}
		k("apply", "-f", volManifest(t, "again.yaml", `apiVersion: v1
kind: Secret
metadata: {name: app-secret}
stringData: {password: after-restart}
`))
		logs("consumer", lineHas("password=after-restart"))
		if n := k("get", "pod", "consumer", "-o", "jsonpath={.status.containerStatuses[0].restartCount}"); n != "0" {
			t.Errorf("consumer restarted %s times across the daemon restart", n)
		}
	}
}

// mountedUnder reports whether anything is mounted at or below dir.
func mountedUnder(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			return true
		}
	}
	return false
}
