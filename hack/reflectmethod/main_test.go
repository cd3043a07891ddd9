package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func dump(t *testing.T, text string) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dump")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestReachableReflectMethods(t *testing.T) {
	f := dump(t, `# github.com/x/cmd
_ -> main.main
main.main -> cli.printHelp
cli.printHelp -> text/template.(*state).evalField
text/template.(*state).evalField <ReflectMethod> -> reflect.Value.MethodByName
reflect.Value.MethodByName <ReflectMethod> -> reflect.Value.Method
unreached.f <ReflectMethod> -> reflect.Value.Method
`)
	got, err := reachableReflectMethods(f)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"_", "main.main", "cli.printHelp", "text/template.(*state).evalField"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestNoReflectMethods(t *testing.T) {
	got, err := reachableReflectMethods(dump(t, "_ -> main.main\nmain.main -> fmt.Println\n"))
	if err != nil || len(got) != 0 {
		t.Errorf("got %q, %v; want none", got, err)
	}
	if _, err := reachableReflectMethods(dump(t, "")); err == nil {
		t.Error("empty dump: want an error")
	}
}
