package agent

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/nanokube/nanokube/network"
)

// kubelet's limits on a pod's resolver configuration.
const (
	maxDNSNameservers     = 3
	maxDNSSearchPaths     = 32
	maxDNSSearchListChars = 2048
)

// podResolvConf is the pod's /etc/resolv.conf the way kubelet computes it
// from dnsPolicy and dnsConfig: ClusterFirst (the default) uses the cluster
// DNS with the namespace's search path and ndots:5, falling back to the
// host's configuration for hostNetwork pods; ClusterFirstWithHostNet uses
// the cluster DNS even then; Default uses the host's; None only dnsConfig.
// dnsConfig's nameservers and searches are appended, its options merged.
func podResolvConf(pod *corev1.Pod, host network.ResolvConf, clusterDNS, domain string) network.ResolvConf {
	var c network.ResolvConf
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	cluster := policy == corev1.DNSClusterFirstWithHostNet || (policy == corev1.DNSClusterFirst && !pod.Spec.HostNetwork)
	switch {
	case policy == corev1.DNSNone:
	case cluster && clusterDNS != "":
		c.Nameservers = []string{clusterDNS}
		c.Searches = append([]string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}, host.Searches...)
		c.Options = []string{"ndots:5"}
	default:
		c = network.ResolvConf{Nameservers: append([]string(nil), host.Nameservers...), Searches: append([]string(nil), host.Searches...),
			Options: append([]string(nil), host.Options...)}
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		c.Nameservers = omitDuplicates(append(c.Nameservers, dc.Nameservers...))
		c.Searches = omitDuplicates(append(c.Searches, dc.Searches...))
		c.Options = mergeDNSOptions(c.Options, dc.Options)
	}
	if len(c.Nameservers) > maxDNSNameservers {
		c.Nameservers = c.Nameservers[:maxDNSNameservers]
	}
	if len(c.Searches) > maxDNSSearchPaths {
		c.Searches = c.Searches[:maxDNSSearchPaths]
	}
	for len(c.Searches) > 0 && len(strings.Join(c.Searches, " ")) > maxDNSSearchListChars {
		c.Searches = c.Searches[:len(c.Searches)-1]
	}
	return c
}

func omitDuplicates(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// mergeDNSOptions is kubelet's: dnsConfig options replace options of the
// same name.
func mergeDNSOptions(existing []string, extra []corev1.PodDNSConfigOption) []string {
	opts := map[string]string{}
	var order []string
	set := func(name, value string) {
		if _, ok := opts[name]; !ok {
			order = append(order, name)
		}
		opts[name] = value
	}
	for _, o := range existing {
		name, value, _ := strings.Cut(o, ":")
		set(name, value)
	}
	for _, o := range extra {
		value := ""
		if o.Value != nil {
			value = *o.Value
		}
		set(o.Name, value)
	}
	out := make([]string, 0, len(order))
	for _, name := range order {
		if opts[name] != "" {
			out = append(out, name+":"+opts[name])
		} else {
			out = append(out, name)
		}
	}
	return out
}

// podHostname is the pod's hostname like kubelet's: spec.hostname or the
// pod name, cut to 63 characters; the FQDN with setHostnameAsFQDN.
func podHostname(pod *corev1.Pod, domain string) string {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	if fq := podFQDN(pod, h, domain); fq != "" && pod.Spec.SetHostnameAsFQDN != nil && *pod.Spec.SetHostnameAsFQDN {
		return fq
	}
	return h
}

// podFQDN is hostname.subdomain.ns.svc.domain for pods with a subdomain.
func podFQDN(pod *corev1.Pod, hostname, domain string) string {
	if pod.Spec.Subdomain == "" {
		return ""
	}
	return fmt.Sprintf("%s.%s.%s.svc.%s", hostname, pod.Spec.Subdomain, pod.Namespace, domain)
}

// podHosts is kubelet's managed /etc/hosts: localhost entries, the pod's
// address with its FQDN (when it has a subdomain) and hostname, then
// hostAliases.
func podHosts(pod *corev1.Pod, ip, domain string) string {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	if fq := podFQDN(pod, h, domain); fq != "" {
		fmt.Fprintf(&b, "%s\t%s\t%s\n", ip, fq, h)
	} else {
		fmt.Fprintf(&b, "%s\t%s\n", ip, h)
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	return b.String()
}
