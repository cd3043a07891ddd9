package main

import (
	"os"

	"github.com/nanokube/nanokube/hack/testimages"
)

func main() {
	f, _ := os.Create(os.Args[1])
	if err := testimages.BusyboxTar(f, "nanokube.local/busybox:test"); err != nil {
		panic(err)
	}
	f.Close()
}
