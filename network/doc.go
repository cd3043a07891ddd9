// Package network builds a profile's networks, declaratively: every Ensure*
// computes the desired state and applies only the difference, so running it
// twice is a no-op and a restart converges. A profile has a bridge in the
// current ("host") netns; each node is a netns bind-mounted under
// /run/nanokube/<profile>/netns, joined to the bridge by a veth pair.
package network
