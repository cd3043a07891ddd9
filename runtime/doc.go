// Package runtime runs pod containers under containerd and runc: a managed
// containerd child (or an existing one), images (import, pull, list), and
// containers that join a pod's network namespace. No pause container: the
// pod's netns is made by package network and given to every container.
package runtime
