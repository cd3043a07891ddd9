package volume

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestContainerMounts(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	os.MkdirAll(filepath.Join(data, "logs"), 0o777)
	os.Chmod(data, 0o777)
	cfg := filepath.Join(root, "cfg")
	if _, err := (AtomicWriter{Dir: cfg}).Write(map[string]FileProjection{"app.conf": {Data: []byte("x"), Mode: 0o644}}, nil); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/etc", filepath.Join(data, "escape"))
	vols := map[string]Mounted{"data": {Path: data}, "cfg": {Path: cfg, ReadOnly: true}}
	hostToContainer := corev1.MountPropagationHostToContainer
	cfgTarget, _ := filepath.EvalSymlinks(filepath.Join(cfg, "app.conf"))

	tests := []struct {
		name    string
		mounts  []corev1.VolumeMount
		env     map[string]string
		want    []string // source|destination|options
		wantErr string
	}{
		{"plain mount", []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}, nil,
			[]string{data + "|/data|rbind,rw,rprivate"}, ""},
		{"readOnly mount", []corev1.VolumeMount{{Name: "data", MountPath: "/data", ReadOnly: true}}, nil,
			[]string{data + "|/data|rbind,ro,rprivate"}, ""},
		{"configMap volume is always read-only", []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/app"}}, nil,
			[]string{cfg + "|/etc/app|rbind,ro,rprivate"}, ""},
		{"subPath of an existing directory", []corev1.VolumeMount{{Name: "data", MountPath: "/logs", SubPath: "logs"}}, nil,
			[]string{filepath.Join(data, "logs") + "|/logs|rbind,rw,rprivate"}, ""},
		{"subPath file of a configMap resolves the ..data link", []corev1.VolumeMount{{Name: "cfg", MountPath: "/app.conf", SubPath: "app.conf"}}, nil,
			[]string{cfgTarget + "|/app.conf|rbind,ro,rprivate"}, ""},
		{"missing subPath is created", []corev1.VolumeMount{{Name: "data", MountPath: "/new", SubPath: "a/b"}}, nil,
			[]string{filepath.Join(data, "a/b") + "|/new|rbind,rw,rprivate"}, ""},
		{"symlink out of the volume stays inside", []corev1.VolumeMount{{Name: "data", MountPath: "/x", SubPath: "escape"}}, nil,
			[]string{filepath.Join(data, "etc") + "|/x|rbind,rw,rprivate"}, ""},
		{"subPathExpr", []corev1.VolumeMount{{Name: "data", MountPath: "/mine", SubPathExpr: "pods/$(POD_NAME)"}}, map[string]string{"POD_NAME": "web-0"},
			[]string{filepath.Join(data, "pods/web-0") + "|/mine|rbind,rw,rprivate"}, ""},
		{"subPathExpr with a missing variable", []corev1.VolumeMount{{Name: "data", MountPath: "/mine", SubPathExpr: "$(NOPE)"}}, nil,
			nil, "missing value for NOPE"},
		{"HostToContainer propagation", []corev1.VolumeMount{{Name: "data", MountPath: "/data", MountPropagation: &hostToContainer}}, nil,
			[]string{data + "|/data|rbind,rw,rslave"}, ""},
		{"absolute subPath", []corev1.VolumeMount{{Name: "data", MountPath: "/d", SubPath: "/etc"}}, nil,
			nil, "must not be an absolute path"},
		{"subPath with ..", []corev1.VolumeMount{{Name: "data", MountPath: "/d", SubPath: "a/../../etc"}}, nil,
			nil, "must not contain '..'"},
		{"unknown volume", []corev1.VolumeMount{{Name: "nope", MountPath: "/d"}}, nil,
			nil, `cannot find volume "nope" to mount into container "app"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ContainerMounts(&corev1.Container{Name: "app", VolumeMounts: tt.mounts}, vols, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var desc []string
			for _, m := range got {
				desc = append(desc, m.Source+"|"+m.Destination+"|"+strings.Join(m.Options, ","))
				if m.Type != "bind" {
					t.Errorf("mount type %q", m.Type)
				}
			}
			if !reflect.DeepEqual(desc, tt.want) {
				t.Errorf("mounts = %v, want %v", desc, tt.want)
			}
		})
	}
	if fi, err := os.Stat(filepath.Join(data, "a/b")); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("created subPath: %v %v, want mode 0777 like the volume", fi, err)
	}
}

func TestPayloads(t *testing.T) {
	mode, m400 := int32(0o644), int32(0o400)
	cm := &corev1.ConfigMap{Data: map[string]string{"a": "1", "b": "2"}, BinaryData: map[string][]byte{"bin": {0, 1}}}
	sec := &corev1.Secret{Data: map[string][]byte{"password": []byte("s3cr3t")}}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "u-1", Labels: map[string]string{"tier": "front", "app": "web"},
			Annotations: map[string]string{"note": `say "hi"`}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
			Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		}}}},
	}
	res := Resources{Allocatable: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi"), corev1.ResourceCPU: resource.MustParse("2")}}
	mi := resource.MustParse("1Mi")
	show := func(p map[string]FileProjection) map[string]string {
		out := map[string]string{}
		for k, v := range p {
			out[k] = string(v.Data) + " " + os.FileMode(v.Mode).String()
		}
		return out
	}
	tests := []struct {
		name    string
		make    func() (map[string]FileProjection, error)
		want    map[string]string
		wantErr string
	}{
		{"configMap: every key", func() (map[string]FileProjection, error) { return ConfigMapPayload(nil, cm, &mode, false) },
			map[string]string{"a": "1 -rw-r--r--", "b": "2 -rw-r--r--", "bin": "\x00\x01 -rw-r--r--"}, ""},
		{"configMap: items with a mode", func() (map[string]FileProjection, error) {
			return ConfigMapPayload([]corev1.KeyToPath{{Key: "a", Path: "dir/a.txt", Mode: &m400}}, cm, &mode, false)
		}, map[string]string{"dir/a.txt": "1 -r--------"}, ""},
		{"configMap: missing key", func() (map[string]FileProjection, error) {
			return ConfigMapPayload([]corev1.KeyToPath{{Key: "zz", Path: "z"}}, cm, &mode, false)
		}, nil, "configmap references non-existent config key: zz"},
		{"configMap: missing key, optional", func() (map[string]FileProjection, error) {
			return ConfigMapPayload([]corev1.KeyToPath{{Key: "zz", Path: "z"}}, cm, &mode, true)
		}, map[string]string{}, ""},
		{"configMap: missing optional map", func() (map[string]FileProjection, error) { return ConfigMapPayload(nil, nil, &mode, true) },
			map[string]string{}, ""},
		{"secret: defaultMode", func() (map[string]FileProjection, error) { return SecretPayload(nil, sec, &m400, false) },
			map[string]string{"password": "s3cr3t -r--------"}, ""},
		{"secret: missing key", func() (map[string]FileProjection, error) {
			return SecretPayload([]corev1.KeyToPath{{Key: "user", Path: "u"}}, sec, &mode, false)
		}, nil, "references non-existent secret key: user"},
		{"downwardAPI: fields and resources", func() (map[string]FileProjection, error) {
			return DownwardAPIPayload([]corev1.DownwardAPIVolumeFile{
				{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
				{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations"}},
				{Path: "tier", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['tier']"}},
				{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}, Mode: &m400},
				{Path: "uid", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}},
				{Path: "cpu_limit", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.cpu", Divisor: resource.MustParse("1m")}},
				{Path: "cpu_limit_cores", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.cpu"}},
				{Path: "mem_limit", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.memory", Divisor: mi}},
				{Path: "mem_request", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "requests.memory", Divisor: mi}},
			}, pod, res, &mode)
		}, map[string]string{
			"labels": "app=\"web\"\ntier=\"front\" -rw-r--r--", "annotations": `note="say \"hi\"" -rw-r--r--`, "tier": "front -rw-r--r--",
			"name": "web -r--------", "uid": "u-1 -rw-r--r--", "cpu_limit": "250 -rw-r--r--", "cpu_limit_cores": "1 -rw-r--r--",
			"mem_limit": "2048 -rw-r--r--", "mem_request": "64 -rw-r--r--",
		}, ""},
		{"downwardAPI: unsupported field", func() (map[string]FileProjection, error) {
			return DownwardAPIPayload([]corev1.DownwardAPIVolumeFile{{Path: "ip", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}, pod, res, &mode)
		}, nil, "unsupported fieldPath: status.podIP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.make()
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := show(p); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("payload = %q\nwant      %q", got, tt.want)
			}
		})
	}
}

func TestCheckHostPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	typ := func(t corev1.HostPathType) *corev1.HostPathType { return &t }
	tests := []struct {
		name, path string
		typ        *corev1.HostPathType
		wantErr    string
		thenIs     os.FileMode // what exists afterwards; 0: no check
	}{
		{"Directory exists", dir, typ(corev1.HostPathDirectory), "", os.ModeDir},
		{"Directory missing", filepath.Join(dir, "nope"), typ(corev1.HostPathDirectory), "hostPath type check failed: " + filepath.Join(dir, "nope") + " is not a directory", 0},
		{"Directory is a file", file, typ(corev1.HostPathDirectory), "hostPath type check failed: " + file + " is not a directory", 0},
		{"DirectoryOrCreate makes it", filepath.Join(dir, "made/deep"), typ(corev1.HostPathDirectoryOrCreate), "", os.ModeDir},
		{"DirectoryOrCreate on a file", file, typ(corev1.HostPathDirectoryOrCreate), "is not a directory", 0},
		{"File exists", file, typ(corev1.HostPathFile), "", 0},
		{"File is a directory", dir, typ(corev1.HostPathFile), "hostPath type check failed: " + dir + " is not a file", 0},
		{"FileOrCreate makes it", filepath.Join(dir, "new.txt"), typ(corev1.HostPathFileOrCreate), "", 0},
		{"Socket", sock, typ(corev1.HostPathSocket), "", os.ModeSocket},
		{"Socket is a file", file, typ(corev1.HostPathSocket), "hostPath type check failed: " + file + " is not a socket file", 0},
		{"CharDevice", "/dev/null", typ(corev1.HostPathCharDev), "", 0},
		{"CharDevice is a file", file, typ(corev1.HostPathCharDev), "is not a character device", 0},
		{"BlockDevice is a char device", "/dev/null", typ(corev1.HostPathBlockDev), "hostPath type check failed: /dev/null is not a block device", 0},
		{"unset type makes a missing directory", filepath.Join(dir, "unset"), nil, "", os.ModeDir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckHostPath(tt.path, tt.typ)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(tt.path)
			if err != nil {
				t.Fatalf("%s does not exist afterwards: %v", tt.path, err)
			}
			if tt.thenIs != 0 && fi.Mode()&os.ModeType != tt.thenIs {
				t.Errorf("%s has type %v", tt.path, fi.Mode().Type())
			}
		})
	}
}

func TestSetOwnership(t *testing.T) {
	gid := int64(os.Getgid())
	dir := t.TempDir()
	os.Chmod(dir, 0o700)
	os.MkdirAll(filepath.Join(dir, "sub"), 0o700)
	os.WriteFile(filepath.Join(dir, "sub", "f"), []byte("x"), 0o600)
	if err := SetOwnership(dir, &gid, false, nil); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		dir:                         os.ModeDir | os.ModeSetgid | 0o770,
		filepath.Join(dir, "sub"):   os.ModeDir | os.ModeSetgid | 0o770,
		filepath.Join(dir, "sub/f"): 0o660,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&(os.ModePerm|os.ModeSetgid|os.ModeDir) != want {
			t.Errorf("%s mode %v, want %v", p, fi.Mode(), want)
		}
		if int64(fi.Sys().(*syscall.Stat_t).Gid) != gid {
			t.Errorf("%s gid %d, want %d", p, fi.Sys().(*syscall.Stat_t).Gid, gid)
		}
	}
	ro := t.TempDir()
	os.WriteFile(filepath.Join(ro, "k"), []byte("x"), 0o400)
	if err := SetOwnership(ro, &gid, true, nil); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(ro, "k")); fi.Mode().Perm() != 0o440 {
		t.Errorf("read-only volume file mode %v, want 0440", fi.Mode().Perm())
	}
	// OnRootMismatch leaves a volume whose root already fits alone.
	os.WriteFile(filepath.Join(dir, "later"), []byte("x"), 0o600)
	policy := corev1.FSGroupChangeOnRootMismatch
	if err := SetOwnership(dir, &gid, false, &policy); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "later")); fi.Mode().Perm() != 0o600 {
		t.Errorf("OnRootMismatch changed a file below a matching root: %v", fi.Mode().Perm())
	}
}

func TestExpandSubPath(t *testing.T) {
	env := map[string]string{"A": "x", "EMPTY": ""}
	tests := []struct{ in, want, err string }{
		{"$(A)/y", "x/y", ""},
		{"$$(A)", "$(A)", ""},
		{"plain", "plain", ""},
		{"$(EMPTY)/$(B)", "", "missing value for B, EMPTY"},
	}
	for _, tt := range tests {
		got, err := ExpandSubPath(tt.in, env)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%q: err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
