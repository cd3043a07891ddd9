//go:build !linux

package network

import (
	"context"
	"errors"
	"net"
)

var errUnsupported = errors.New("nanokube networking needs Linux")

func ListenTCP(nsPath, addr string) (net.Listener, error) { return nil, errUnsupported }
func DialContext(ctx context.Context, nsPath, network, addr string) (net.Conn, error) {
	return nil, errUnsupported
}
