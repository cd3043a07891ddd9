// Package dockerapi serves the subset of the Docker Engine API that the
// docker CLI needs for build, images, ps, logs, tag, rmi, load, save,
// version and info, over the cluster's own containerd image store (the
// profile's namespace), so an image built with `docker build` is usable by a
// pod at once. Builds run in an embedded BuildKit (Dockerfile frontend,
// containerd worker on the same containerd, snapshotter and namespace),
// started on the first build: both the classic /build endpoint (a tar
// context, what the docker CLI sends without buildx) and BuildKit's own
// gRPC API and sessions (/grpc, /session, what buildx's docker driver uses).
//
// Endpoints outside the subset answer 501 with a message saying so.
package dockerapi
