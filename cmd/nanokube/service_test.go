package main

import (
	"reflect"
	"testing"
)

func TestServiceOptsParse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		rest []string
		want serviceOpts
		err  bool
	}{
		{args: []string{"web", "--url", "-n", "dev"}, rest: []string{"web"}, want: serviceOpts{url: true, namespace: "dev"}},
		{args: []string{"web", "--namespace=dev", "-p", "other"}, rest: []string{"web"}, want: serviceOpts{namespace: "dev", profile: "other"}},
		{args: []string{"--all", "-n"}, err: true},
		{args: []string{"web", "--bogus"}, err: true},
	} {
		var o serviceOpts
		rest, err := o.parse(tc.args)
		if (err != nil) != tc.err {
			t.Errorf("%v: err = %v", tc.args, err)
			continue
		}
		if !tc.err && (!reflect.DeepEqual(rest, tc.rest) || o != tc.want) {
			t.Errorf("%v: rest %v opts %+v, want %v %+v", tc.args, rest, o, tc.rest, tc.want)
		}
	}
}
