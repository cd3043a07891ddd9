// Command nanokube starts and manages local Kubernetes clusters.
package main

import "os"

func main() { os.Exit(run(os.Args)) }
