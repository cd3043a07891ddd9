// Command reflectmethod reads the linker's dependency dump
// (`go build -ldflags=-dumpdep ./cmd/nanokube 2>&1`) on stdin and fails when
// a function outside package reflect that calls reflect.Value.Method,
// Value.MethodByName or Type.Method with a non-constant argument is
// reachable. Such a call (text/template's field lookup is the usual one)
// makes the linker keep every exported method of every reachable type: it
// grew bin/nanokube from 62 to 89 MB (third_party/README.md,
// docs/DESIGN.md § Memory at idle). For each such function it prints the
// chain of references from the program's entry that keeps it.
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"
)

func main() {
	chains, err := reachableReflectMethods(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reflectmethod:", err)
		os.Exit(2)
	}
	if len(chains) == 0 {
		fmt.Println("reflectmethod: no reachable dynamic method lookup; the linker drops unused exported methods")
		return
	}
	for _, c := range chains {
		fmt.Printf("%s keeps every exported method:\n    %s\n", c[len(c)-1], strings.Join(c, "\n -> "))
	}
	os.Exit(1)
}

// reachableReflectMethods parses "from -> to" lines (from may carry a
// "<ReflectMethod>" mark) and returns, for every marked function outside
// reflect reachable from "_", the shortest chain that reaches it.
func reachableReflectMethods(f *os.File) ([][]string, error) {
	edges := map[string][]string{}
	marked := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		from, to, ok := strings.Cut(sc.Text(), " -> ")
		if !ok {
			continue
		}
		from, attrs, _ := strings.Cut(from, " <")
		if strings.Contains(attrs, "ReflectMethod") {
			marked[from] = true
		}
		to, _, _ = strings.Cut(to, " <")
		edges[from] = append(edges[from], to)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read dump: %w", err)
	}
	if len(edges) == 0 {
		return nil, fmt.Errorf("no dependency lines on stdin (want the output of go build -ldflags=-dumpdep)")
	}
	parent := map[string]string{"_": ""}
	queue := []string{"_"}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		for _, y := range edges[x] {
			if _, seen := parent[y]; !seen {
				parent[y] = x
				queue = append(queue, y)
			}
		}
	}
	var found []string
	for m := range marked {
		if _, ok := parent[m]; ok && !strings.HasPrefix(m, "reflect.") && !strings.HasPrefix(m, "type:") {
			found = append(found, m)
		}
	}
	sort.Strings(found)
	var chains [][]string
	for _, m := range found {
		var c []string
		for x := m; x != ""; x = parent[x] {
			c = append([]string{x}, c...)
		}
		chains = append(chains, c)
	}
	return chains, nil
}
