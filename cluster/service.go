package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ServiceURL is one way to reach a Service port from the host.
type ServiceURL struct {
	Namespace, Name string
	// Target is the port as minikube shows it: "name/port" or "port".
	Target string
	URL    string // "" when the port has no node port
}

// adminClientset is a typed client with the profile's admin credentials.
func adminClientset(p Profile) (kubernetes.Interface, State, error) {
	if !p.Exists() {
		return nil, State{}, errNoProfile(p)
	}
	if err := runningDaemon(p); err != nil {
		return nil, State{}, err
	}
	st, err := p.LoadState()
	if err != nil {
		return nil, State{}, fmt.Errorf("profile %q has not started yet: nanokube start -p %s", p.Name, p.Name)
	}
	c, err := certsFor(p, st)
	if err != nil {
		return nil, State{}, err
	}
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: st.APIEndpoint, TLSClientConfig: rest.TLSClientConfig{
		CAFile: c.CACert, CertFile: c.AdminCert, KeyFile: c.AdminKey}})
	if err != nil {
		return nil, State{}, fmt.Errorf("client for %s: %w", st.APIEndpoint, err)
	}
	return cs, st, nil
}

// serviceURLs lists how each port of s is reached from the host: the
// first node's IP and the node port, then the LoadBalancer addresses.
func serviceURLs(s *corev1.Service, nodeIP string) []ServiceURL {
	var out []ServiceURL
	for _, sp := range s.Spec.Ports {
		target := strconv.Itoa(int(sp.Port))
		if sp.Name != "" {
			target = sp.Name + "/" + target
		}
		u := ServiceURL{Namespace: s.Namespace, Name: s.Name, Target: target}
		if sp.NodePort != 0 && nodeIP != "" {
			u.URL = "http://" + net.JoinHostPort(nodeIP, strconv.Itoa(int(sp.NodePort)))
		}
		out = append(out, u)
	}
	if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, ing := range s.Status.LoadBalancer.Ingress {
			if ing.IP == "" {
				continue
			}
			for _, sp := range s.Spec.Ports {
				out = append(out, ServiceURL{Namespace: s.Namespace, Name: s.Name, Target: strconv.Itoa(int(sp.Port)),
					URL: "http://" + net.JoinHostPort(ing.IP, strconv.Itoa(int(sp.Port)))})
			}
		}
	}
	return out
}

// ServiceURLs returns the URLs of a Service (name "" with all: every
// Service of the namespace).
func ServiceURLs(ctx context.Context, p Profile, namespace, name string, all bool) ([]ServiceURL, error) {
	cs, st, err := adminClientset(p)
	if err != nil {
		return nil, err
	}
	nodeIP := ""
	if len(st.Nodes) > 0 {
		nodeIP = st.Nodes[0].IP
	}
	var svcs []corev1.Service
	if all {
		l, err := cs.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list services in %q: %w", namespace, err)
		}
		svcs = l.Items
	} else {
		s, err := cs.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("service %q not found in namespace %q: kubectl get svc -n %s", name, namespace, namespace)
		}
		if err != nil {
			return nil, fmt.Errorf("get service %s/%s: %w", namespace, name, err)
		}
		svcs = []corev1.Service{*s}
	}
	var out []ServiceURL
	for i := range svcs {
		for _, u := range serviceURLs(&svcs[i], nodeIP) {
			if u.URL != "" {
				out = append(out, u)
			}
		}
	}
	if len(out) == 0 && !all {
		return nil, fmt.Errorf("service %s/%s has no node port (type %s): kubectl expose --type=NodePort, kubectl port-forward svc/%s, or nanokube tunnel for its ClusterIP",
			namespace, name, svcs[0].Spec.Type, name)
	}
	return out, nil
}

// ListServices prints minikube's `service list` table.
func ListServices(ctx context.Context, p Profile, namespace string, w io.Writer) error {
	cs, st, err := adminClientset(p)
	if err != nil {
		return err
	}
	nodeIP := ""
	if len(st.Nodes) > 0 {
		nodeIP = st.Nodes[0].IP
	}
	l, err := cs.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	sort.Slice(l.Items, func(i, j int) bool {
		a, b := l.Items[i], l.Items[j]
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	rows := [][]string{{"NAMESPACE", "NAME", "TARGET PORT", "URL"}}
	for i := range l.Items {
		s := &l.Items[i]
		var urls []ServiceURL
		for _, u := range serviceURLs(s, nodeIP) {
			if u.URL != "" {
				urls = append(urls, u)
			}
		}
		if len(urls) == 0 {
			rows = append(rows, []string{s.Namespace, s.Name, "No node port", ""})
			continue
		}
		var targets, links []string
		for _, u := range urls {
			targets, links = append(targets, u.Target), append(links, u.URL)
		}
		rows = append(rows, []string{s.Namespace, s.Name, strings.Join(targets, "\n"), strings.Join(links, "\n")})
	}
	return printBoxTable(w, rows)
}

// printBoxTable draws minikube's |---| table; a cell may hold several
// lines.
func printBoxTable(w io.Writer, rows [][]string) error {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			for _, line := range strings.Split(c, "\n") {
				width[i] = max(width[i], len(line))
			}
		}
	}
	var b strings.Builder
	sep := func() {
		b.WriteString("|")
		for _, n := range width {
			b.WriteString(strings.Repeat("-", n+2) + "|")
		}
		b.WriteString("\n")
	}
	sep()
	for ri, r := range rows {
		lines := 1
		for _, c := range r {
			lines = max(lines, len(strings.Split(c, "\n")))
		}
		for li := 0; li < lines; li++ {
			b.WriteString("|")
			for i, c := range r {
				parts := strings.Split(c, "\n")
				cell := ""
				if li < len(parts) {
					cell = parts[li]
				}
				fmt.Fprintf(&b, " %-*s |", width[i], cell)
			}
			b.WriteString("\n")
		}
		if ri == 0 {
			sep()
		}
	}
	sep()
	_, err := io.WriteString(w, b.String())
	return err
}
