package ingress

import (
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

func ptrBackend(b networkingv1.IngressBackend) *networkingv1.IngressBackend { return &b }

func ingsOf(in ...*networkingv1.Ingress) []*networkingv1.Ingress { return in }

func backendName(b *Backend) string {
	if b == nil {
		return "<404>"
	}
	return strings.TrimSuffix(strings.TrimPrefix(b.Name, "default/"), ":80")
}

func TestRoutingPrecedence(t *testing.T) {
	src := newSource()
	for _, s := range []string{"root", "foo", "foo-exact", "foobar", "deep", "wild", "any", "def", "impl", "old", "new", "trail"} {
		src.service(s, "10.0.0.1")
	}
	first := ing("first", 100, map[string][]pathSpec{
		"foo.com": {
			{"/", "Prefix", "root"},
			{"/foo", "Prefix", "foo"},
			{"/foo", "Exact", "foo-exact"},
			{"/foobar", "Prefix", "foobar"},
			{"/foo/bar/baz", "Prefix", "deep"},
			{"/impl", "ImplementationSpecific", "impl"},
			{"/trail/", "Prefix", "trail"},
			{"/same", "Prefix", "old"},
		},
		"*.foo.com": {{"/", "Prefix", "wild"}},
		"":          {{"/", "Prefix", "any"}},
	})
	first.Spec.DefaultBackend = ptrBackend(backend("def"))
	// A newer Ingress: its rule for an existing host and path loses, its
	// new paths merge in, its default backend is ignored.
	second := ing("second", 200, map[string][]pathSpec{
		"foo.com":       {{"/same", "Prefix", "new"}, {"/only-new", "Exact", "new"}},
		"exact.foo.com": {{"/x", "Exact", "new"}},
	})
	second.Spec.DefaultBackend = ptrBackend(backend("new"))
	tbl := Build(append(ingsOf(second), first), src, nil)

	for _, tc := range []struct{ host, path, want string }{
		{"foo.com", "/", "root"},
		{"foo.com", "/anything", "root"},
		{"foo.com", "/foo", "foo-exact"},        // Exact before Prefix of the same path
		{"foo.com", "/foo/", "foo"},             // Exact does not match a trailing slash
		{"foo.com", "/foo/x", "foo"},            // element-wise prefix
		{"foo.com", "/foobar", "foobar"},        // /foo does not match /foobar: /foobar does
		{"foo.com", "/foobarbaz", "root"},       // neither matches /foobarbaz
		{"foo.com", "/foo/bar/baz/qux", "deep"}, // longest match
		{"foo.com", "/foo/bar/bazz", "foo"},
		{"foo.com", "/impl/x", "impl"}, // ImplementationSpecific = Prefix
		{"foo.com", "/trail", "trail"}, // a Prefix's trailing slash is ignored
		{"foo.com", "/trail/a", "trail"},
		{"foo.com", "/same", "old"},     // the oldest Ingress wins a conflict
		{"foo.com", "/only-new", "new"}, // rules of several Ingresses merge
		{"FOO.com:80", "/foo", "foo-exact"},
		{"foo.com.", "/foo", "foo-exact"},
		{"bar.foo.com", "/x", "wild"},  // wildcard: one label
		{"exact.foo.com", "/x", "new"}, // an exact host beats the wildcard
		{"exact.foo.com", "/y", "def"}, // host matched, no path: default backend
		{"a.b.foo.com", "/x", "any"},   // wildcard does not match two labels
		{"foo.com.evil", "/", "any"},
		{"other.org", "/", "any"}, // rules without a host
		{"10.1.2.3", "/z", "any"},
	} {
		if got := backendName(tbl.Match(tc.host, tc.path)); got != tc.want {
			t.Errorf("Match(%q, %q) = %s, want %s", tc.host, tc.path, got, tc.want)
		}
	}

	// Without rules for any host and without a default backend: 404.
	bare := Build(ingsOf(ing("bare", 1, map[string][]pathSpec{"a.com": {{"/api", "Prefix", "foo"}}})), src, nil)
	for _, tc := range []struct{ host, path, want string }{{"a.com", "/api/v1", "foo"}, {"a.com", "/", "<404>"}, {"b.com", "/api", "<404>"}} {
		if got := backendName(bare.Match(tc.host, tc.path)); got != tc.want {
			t.Errorf("bare: Match(%q, %q) = %s, want %s", tc.host, tc.path, got, tc.want)
		}
	}
}
