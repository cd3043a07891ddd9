package dockerapi

import (
	"encoding/json"
	"path"
	"sort"
	"strings"

	"github.com/distribution/reference"
)

// filters is Docker's ?filters= parameter: {"key": {"value": true}} (or
// the old {"key": ["value"]}), as key → values.
type filters map[string][]string

func parseFilters(s string) (filters, error) {
	f := filters{}
	if s == "" {
		return f, nil
	}
	var m map[string]map[string]bool
	if err := json.Unmarshal([]byte(s), &m); err == nil {
		for k, vs := range m {
			for v, on := range vs {
				if on {
					f[k] = append(f[k], v)
				}
			}
			sort.Strings(f[k])
		}
		return f, nil
	}
	var old map[string][]string
	if err := json.Unmarshal([]byte(s), &old); err != nil {
		return nil, errBadRequest("invalid filter: %v", err)
	}
	for k, vs := range old {
		f[k] = vs
	}
	return f, nil
}

// only rejects filter keys outside allowed, like dockerd.
func (f filters) only(allowed ...string) error {
	for k := range f {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return errBadRequest("invalid filter '%s'", k)
		}
	}
	return nil
}

// matchLabels: every label filter ("key" or "key=value") holds.
func (f filters) matchLabels(labels map[string]string) bool {
	for _, l := range f["label"] {
		k, v, hasValue := strings.Cut(l, "=")
		got, ok := labels[k]
		if !ok || hasValue && got != v {
			return false
		}
	}
	return true
}

// matchReferences keeps the familiar names matching any pattern, the way
// `docker images PATTERN` matches: against "repo:tag" and "repo".
func matchReferences(names, patterns []string) []string {
	var out []string
	for _, n := range names {
		repo := n
		if named, err := reference.ParseNormalizedNamed(n); err == nil {
			repo = reference.FamiliarName(named)
		}
		for _, p := range patterns {
			if ok, _ := path.Match(p, n); ok {
				out = append(out, n)
				break
			}
			if ok, _ := path.Match(p, repo); ok {
				out = append(out, n)
				break
			}
		}
	}
	return out
}
