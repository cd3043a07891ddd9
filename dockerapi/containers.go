//go:build linux

package dockerapi

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	units "github.com/docker/go-units"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels the node agent puts on every pod container.
const (
	labelPodUID       = "io.kubernetes.pod.uid"
	labelPodName      = "io.kubernetes.pod.name"
	labelPodNamespace = "io.kubernetes.pod.namespace"
	labelContainer    = "io.kubernetes.container.name"
)

// containerRecord is one pod container as docker shows it.
type containerRecord struct {
	id, cid    string // docker id, containerd id
	name       string // k8s_<container>_<pod>_<ns>_<uid>_<restarts>
	image      string // store name
	labels     map[string]string
	created    time.Time
	running    bool
	hasTask    bool
	pid        uint32
	exitCode   uint32
	startedAt  time.Time
	finishedAt time.Time
	restarts   int
	spec       *oci.Spec
	pod        *corev1.Pod
	container  string
}

// containers lists the cluster's pod containers (build steps and anything
// else in the namespace are not shown, like dockerd hides its builds).
func (s *Server) containers(ctx context.Context) ([]*containerRecord, error) {
	ctrs, err := s.cfg.Containerd.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []*containerRecord
	for _, c := range ctrs {
		rec, err := s.containerRecord(ctx, c)
		if err != nil {
			if !errdefs.IsNotFound(err) {
				s.log.Debug("skip container", "id", c.ID(), "err", err)
			}
			continue
		}
		if rec != nil {
			out = append(out, rec)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].created.After(out[j].created) })
	return out, nil
}

func (s *Server) containerRecord(ctx context.Context, c client.Container) (*containerRecord, error) {
	info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return nil, err
	}
	l := info.Labels
	if l[labelPodUID] == "" {
		return nil, nil
	}
	rec := &containerRecord{id: containerID(c.ID()), cid: c.ID(), image: info.Image, labels: l, created: info.CreatedAt, container: l[labelContainer]}
	if sp, err := c.Spec(ctx); err == nil {
		rec.spec = sp
	}
	if task, err := c.Task(ctx, nil); err == nil {
		rec.hasTask = true
		rec.pid = task.Pid()
		if st, err := task.Status(ctx); err == nil {
			switch st.Status {
			case client.Running, client.Paused, client.Pausing:
				rec.running = true
			default:
				rec.exitCode, rec.finishedAt = st.ExitStatus, st.ExitTime
			}
		}
	}
	if s.cfg.Pod != nil {
		if pod, ok := s.cfg.Pod(l[labelPodNamespace], l[labelPodName]); ok && string(pod.UID) == l[labelPodUID] {
			rec.pod = pod
			for _, cs := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
				if cs.Name != rec.container {
					continue
				}
				rec.restarts = int(cs.RestartCount)
				if r := cs.State.Running; r != nil {
					rec.startedAt = r.StartedAt.Time
				}
				if t := cs.State.Terminated; t != nil {
					rec.startedAt, rec.finishedAt = t.StartedAt.Time, t.FinishedAt.Time
				}
			}
		}
	}
	if rec.startedAt.IsZero() {
		rec.startedAt = info.UpdatedAt
	}
	rec.name = kubeContainerName(rec.container, l[labelPodName], l[labelPodNamespace], l[labelPodUID], rec.restarts)
	return rec, nil
}

func (c *containerRecord) state() string {
	switch {
	case c.running:
		return "running"
	case c.hasTask:
		return "exited"
	}
	return "created"
}

// status is docker's human status: "Up 5 minutes", "Exited (0) 2 hours ago".
func (c *containerRecord) status(now time.Time) string {
	switch c.state() {
	case "running":
		return "Up " + units.HumanDuration(now.Sub(c.startedAt))
	case "exited":
		if c.finishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", c.exitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", c.exitCode, units.HumanDuration(now.Sub(c.finishedAt)))
	}
	return "Created"
}

func (c *containerRecord) args() []string {
	if c.spec == nil || c.spec.Process == nil {
		return nil
	}
	return c.spec.Process.Args
}

type mountPoint struct {
	Type        string `json:"Type"`
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	Mode        string `json:"Mode"`
	RW          bool   `json:"RW"`
	Propagation string `json:"Propagation"`
}

func (c *containerRecord) mounts() []mountPoint {
	out := []mountPoint{}
	if c.spec == nil {
		return out
	}
	for _, m := range c.spec.Mounts {
		if m.Type != "bind" {
			continue
		}
		rw := true
		for _, o := range m.Options {
			if o == "ro" {
				rw = false
			}
		}
		out = append(out, mountPoint{Type: "bind", Source: m.Source, Destination: m.Destination, RW: rw, Propagation: "rprivate"})
	}
	return out
}

type containerSummary struct {
	ID              string            `json:"Id"`
	Names           []string          `json:"Names"`
	Image           string            `json:"Image"`
	ImageID         string            `json:"ImageID"`
	Command         string            `json:"Command"`
	Created         int64             `json:"Created"`
	Ports           []any             `json:"Ports"`
	Labels          map[string]string `json:"Labels"`
	State           string            `json:"State"`
	Status          string            `json:"Status"`
	HostConfig      map[string]string `json:"HostConfig"`
	NetworkSettings map[string]any    `json:"NetworkSettings"`
	Mounts          []mountPoint      `json:"Mounts"`
}

// imageIDs maps store names to image IDs.
func (s *Server) imageIDs(ctx context.Context) map[string]string {
	out := map[string]string{}
	recs, err := s.images(ctx)
	if err != nil {
		return out
	}
	for _, r := range recs {
		for _, n := range r.names {
			out[n] = r.id
		}
	}
	return out
}

func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	f, err := parseFilters(q.Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	if err := f.only("id", "name", "label", "status", "ancestor"); err != nil {
		fail(w, err)
		return
	}
	all := boolParam(r, "all")
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit > 0 {
		all = true
	}
	ctrs, err := s.containers(ctx)
	if err != nil {
		fail(w, err)
		return
	}
	ids := s.imageIDs(ctx)
	now := time.Now()
	out := []containerSummary{}
	for _, c := range ctrs {
		if !all && !c.running && len(f["status"]) == 0 {
			continue
		}
		ok, err := c.matches(f, ids)
		if err != nil {
			fail(w, err)
			return
		}
		if !ok {
			continue
		}
		img, ok := familiar(c.image)
		if !ok {
			img = shortID(ids[c.image])
		}
		out = append(out, containerSummary{
			ID: c.id, Names: []string{"/" + c.name}, Image: img, ImageID: ids[c.image], Command: strings.Join(c.args(), " "),
			Created: c.created.Unix(), Ports: []any{}, Labels: c.labels, State: c.state(), Status: c.status(now),
			HostConfig: map[string]string{"NetworkMode": "none"}, NetworkSettings: map[string]any{"Networks": map[string]any{}},
			Mounts: c.mounts(),
		})
		if limit > 0 && len(out) == limit {
			break
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *containerRecord) matches(f filters, imageIDs map[string]string) (bool, error) {
	if vs := f["id"]; len(vs) > 0 && !anyOf(vs, func(v string) bool { return strings.HasPrefix(c.id, v) }) {
		return false, nil
	}
	if vs := f["name"]; len(vs) > 0 {
		ok := false
		for _, v := range vs {
			re, err := regexp.Compile(v)
			if err != nil {
				return false, errBadRequest("invalid name filter %q: %v", v, err)
			}
			ok = ok || re.MatchString(c.name)
		}
		if !ok {
			return false, nil
		}
	}
	if vs := f["status"]; len(vs) > 0 && !anyOf(vs, func(v string) bool { return v == c.state() }) {
		return false, nil
	}
	if vs := f["ancestor"]; len(vs) > 0 && !anyOf(vs, func(v string) bool {
		n, err := normalizeTag(v)
		id := imageIDs[c.image]
		return err == nil && n == c.image || id != "" && strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), strings.TrimPrefix(v, "sha256:"))
	}) {
		return false, nil
	}
	return f.matchLabels(c.labels), nil
}

func anyOf(vs []string, f func(string) bool) bool {
	for _, v := range vs {
		if f(v) {
			return true
		}
	}
	return false
}

// findContainer resolves a docker id, unique id prefix, name or containerd id.
func (s *Server) findContainer(ctx context.Context, ref string) (*containerRecord, error) {
	ctrs, err := s.containers(ctx)
	if err != nil {
		return nil, err
	}
	name := strings.TrimPrefix(ref, "/")
	var byPrefix []*containerRecord
	for _, c := range ctrs {
		if c.id == ref || c.name == name || c.cid == ref {
			return c, nil
		}
		if ref != "" && strings.HasPrefix(c.id, ref) {
			byPrefix = append(byPrefix, c)
		}
	}
	switch len(byPrefix) {
	case 1:
		return byPrefix[0], nil
	case 0:
		return nil, errNotFound("No such container: %s", ref)
	}
	return nil, errBadRequest("multiple IDs found with provided prefix: %s", ref)
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (s *Server) inspectContainer(w http.ResponseWriter, r *http.Request, ref string) {
	ctx := r.Context()
	c, err := s.findContainer(ctx, ref)
	if err != nil {
		fail(w, err)
		return
	}
	args := c.args()
	path, rest := "", []string{}
	if len(args) > 0 {
		path, rest = args[0], args[1:]
	}
	var env []string
	cwd, hostname, user := "", "", ""
	if c.spec != nil && c.spec.Process != nil {
		env, cwd = c.spec.Process.Env, c.spec.Process.Cwd
		user = fmt.Sprintf("%d:%d", c.spec.Process.User.UID, c.spec.Process.User.GID)
	}
	if c.spec != nil {
		hostname = c.spec.Hostname
	}
	img, _ := familiar(c.image)
	finished := c.finishedAt
	if c.running {
		finished = time.Time{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"Id": c.id, "Created": rfc3339(c.created), "Path": path, "Args": rest,
		"State": map[string]any{
			"Status": c.state(), "Running": c.running, "Paused": false, "Restarting": false, "OOMKilled": false, "Dead": false,
			"Pid": c.pid, "ExitCode": c.exitCode, "Error": "", "StartedAt": rfc3339(c.startedAt), "FinishedAt": rfc3339(finished),
		},
		"Image": s.imageIDs(ctx)[c.image], "Name": "/" + c.name, "RestartCount": c.restarts, "Driver": s.cfg.Snapshotter, "Platform": "linux",
		"MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": nil, "LogPath": "", "ResolvConfPath": "", "HostnamePath": "", "HostsPath": "",
		"HostConfig":  map[string]any{"NetworkMode": "none", "RestartPolicy": map[string]any{"Name": "no", "MaximumRetryCount": 0}, "LogConfig": map[string]any{"Type": "json-file", "Config": map[string]string{}}},
		"GraphDriver": graphDriver{Name: s.cfg.Snapshotter},
		"Mounts":      c.mounts(),
		"Config": map[string]any{
			"Hostname": hostname, "Domainname": "", "User": user, "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
			"Tty": false, "OpenStdin": false, "StdinOnce": false, "Env": env, "Cmd": rest, "Image": img, "Volumes": nil, "WorkingDir": cwd,
			"Entrypoint": []string{path}, "OnBuild": nil, "Labels": c.labels,
		},
		"NetworkSettings": map[string]any{"Networks": map[string]any{}, "Ports": map[string]any{}, "IPAddress": podIP(c.pod)},
	})
}

func podIP(p *corev1.Pod) string {
	if p == nil {
		return ""
	}
	return p.Status.PodIP
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request, ref string) {
	ctx := r.Context()
	q := r.URL.Query()
	c, err := s.findContainer(ctx, ref)
	if err != nil {
		fail(w, err)
		return
	}
	if v := q.Get("until"); v != "" && v != "0" {
		fail(w, errNotImplemented("docker logs --until is not supported by nanokube's docker-env"))
		return
	}
	var since *metav1.Time
	if v := q.Get("since"); v != "" && v != "0" {
		// Docker sends unix seconds, with nanoseconds after a dot.
		sec, nsec, _ := strings.Cut(v, ".")
		s, err1 := strconv.ParseInt(sec, 10, 64)
		ns, err2 := int64(0), error(nil)
		if nsec != "" {
			ns, err2 = strconv.ParseInt((nsec + "000000000")[:9], 10, 64)
		}
		if err1 != nil || err2 != nil {
			fail(w, errBadRequest("invalid since %q", v))
			return
		}
		since = &metav1.Time{Time: time.Unix(s, ns)}
	}
	if !boolParam(r, "stdout") && !boolParam(r, "stderr") {
		fail(w, errBadRequest("Bad parameters: you must choose at least one stream"))
		return
	}
	if c.pod == nil || s.cfg.Logs == nil {
		fail(w, errNotFound("the pod of container %s is gone", shortID(c.id)))
		return
	}
	opts := &corev1.PodLogOptions{Container: c.container, Follow: boolParam(r, "follow"), Timestamps: boolParam(r, "timestamps"), SinceTime: since}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			fail(w, errBadRequest("invalid tail %q", t))
			return
		}
		opts.TailLines = &n
	}
	w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
	w.WriteHeader(http.StatusOK)
	fw := &frameWriter{w: w}
	if fl, ok := w.(http.Flusher); ok {
		fw.flush = fl.Flush
	}
	if err := s.cfg.Logs(ctx, c.pod, c.container, opts, fw); err != nil {
		s.log.Debug("container logs", "id", c.cid, "err", err)
	}
}

// frameWriter writes Docker's multiplexed stream (a container without a
// TTY): an 8-byte header (stream 1 = stdout, length) before each chunk. The
// shim's log file holds stdout and stderr together, so all of it is stdout.
type frameWriter struct {
	w     interface{ Write([]byte) (int, error) }
	flush func()
}

func (f *frameWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var hdr [8]byte
	hdr[0] = 1
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	if _, err := f.w.Write(hdr[:]); err != nil {
		return 0, err
	}
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	return n, nil
}

// Flush lets the log follower push each chunk to the client.
func (f *frameWriter) Flush() {
	if f.flush != nil {
		f.flush()
	}
}
