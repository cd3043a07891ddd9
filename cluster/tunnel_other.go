//go:build !linux

package cluster

import (
	"context"
	"errors"
	"io"
)

// Tunnel is not available yet off Linux (the vm driver will forward it).
func Tunnel(context.Context, Profile, io.Writer) error {
	return errors.New("nanokube tunnel needs Linux for now")
}
