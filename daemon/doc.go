// Package daemon is the cluster process: one System built from one Config
// holds every part (store, network, API server, and the node parts as they
// arrive), runs them under one errgroup and stops them in reverse order.
// The daemon runs on Linux only; on macOS it runs inside a VM.
package daemon
