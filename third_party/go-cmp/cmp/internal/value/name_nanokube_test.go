package value

import (
	"io"
	"reflect"
	"testing"
)

type named struct{}

// nanokube's copy spells interface types from reflect.Type.String; this
// checks it against upstream's spelling (upstream name_test.go cases).
func TestInterfaceTypeString(t *testing.T) {
	for _, tc := range []struct {
		in        interface{}
		want      string
		qualified bool
	}{
		{new(interface{}), "*any", false},
		{new(io.Reader), "*io.Reader", false},
		{new(interface{ Read([]byte) (int, error) }), "*interface{ Read([]uint8) (int, error) }", false},
		{new(interface{ Read([]byte) (int, error) }), "*interface{ Read([]uint8) (int, error) }", true},
		{new(interface {
			F1()
			F2(named) named
		}), "*interface{ F1(); F2(value.named) value.named }", false},
		{new(struct{ R io.Reader }), "*struct{ R io.Reader }", false},
	} {
		if got := TypeString(reflect.TypeOf(tc.in), tc.qualified); got != tc.want {
			t.Errorf("TypeString(%T, %v) = %q, want %q", tc.in, tc.qualified, got, tc.want)
		}
	}
}
