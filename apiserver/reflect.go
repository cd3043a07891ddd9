package apiserver

import (
	"reflect"

	"k8s.io/apimachinery/pkg/runtime"
)

// reflectField returns a settable struct field of a kind's Go object.
func reflectField(obj runtime.Object, name string) reflect.Value {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}
	}
	f := v.Elem().FieldByName(name)
	if !f.IsValid() || !f.CanSet() {
		return reflect.Value{}
	}
	return f
}
