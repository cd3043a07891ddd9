package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	gwebsocket "github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	clientportforward "k8s.io/client-go/tools/portforward"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// wsStreams are the streams of one v5 WebSocket session; nil when not
// asked for.
type wsStreams struct {
	stdin          io.Reader
	stdout, stderr io.WriteCloser
	resize         <-chan remotecommand.TerminalSize
}

// serveRemoteCommandV5 serves exec or attach over the v5.channel.k8s.io
// WebSocket protocol, what kubectl 1.30+ speaks first: channels 0-4 are
// stdin, stdout, stderr, the error (status) channel and resize; a message
// on channel 255 closes a channel (the client's end of stdin). Kubelet's
// streaming server stops at v4, so this is kube-apiserver's side of its
// stream translator.
func (s *Server) serveRemoteCommandV5(w http.ResponseWriter, r *http.Request, opts *remotecommand.Options, run func(context.Context, *wsStreams) error) {
	channels := []wsstream.ChannelType{wsChannel(opts.Stdin, wsstream.ReadChannel), wsChannel(opts.Stdout, wsstream.WriteChannel),
		wsChannel(opts.Stderr, wsstream.WriteChannel), wsstream.WriteChannel, wsstream.ReadChannel}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		remotecommand.StreamProtocolV5Name: {Binary: true, Channels: channels},
	})
	conn.SetIdleTimeout(streamIdleTimeout)
	_, streams, err := conn.Open(w, r)
	if err != nil {
		s.log.Debug("websocket upgrade", "path", r.URL.Path, "err", err)
		return
	}
	defer conn.Close()
	// An empty message on the lowest writable channel tells the client the
	// connection is up.
	first := remotecommand.StreamErr
	switch {
	case opts.Stdout:
		first = remotecommand.StreamStdOut
	case opts.Stderr:
		first = remotecommand.StreamStdErr
	}
	if _, err := streams[first].Write([]byte{}); err != nil {
		return
	}
	st := &wsStreams{}
	if opts.Stdin {
		st.stdin = streams[remotecommand.StreamStdIn]
	}
	if opts.Stdout {
		st.stdout = streams[remotecommand.StreamStdOut]
	}
	if opts.Stderr {
		st.stderr = streams[remotecommand.StreamStdErr]
	}
	// The resize channel is read until the connection ends.
	stop := make(chan struct{})
	resizerDone := make(chan struct{})
	sizes := make(chan remotecommand.TerminalSize)
	go func() {
		defer close(resizerDone)
		decodeResizes(stop, streams[remotecommand.StreamResize], sizes)
	}()
	if opts.TTY {
		st.resize = sizes
	}
	err = run(r.Context(), st)
	close(stop)
	conn.SetWriteDeadline(10 * time.Second)
	streams[remotecommand.StreamErr].Write(statusJSON(exitStatus(err)))
	conn.Close() // the client finishes when the connection ends
	<-resizerDone
}

func wsChannel(want bool, t wsstream.ChannelType) wsstream.ChannelType {
	if want {
		return t
	}
	return wsstream.IgnoreChannel
}

// decodeResizes reads JSON terminal sizes until the stream ends; after
// stop it discards what comes, so the connection's reader never blocks.
func decodeResizes(stop <-chan struct{}, r io.Reader, sizes chan<- remotecommand.TerminalSize) {
	defer close(sizes)
	dec := json.NewDecoder(r)
	for {
		var size remotecommand.TerminalSize
		if err := dec.Decode(&size); err != nil {
			io.Copy(io.Discard, r)
			return
		}
		select {
		case sizes <- size:
		case <-stop:
			io.Copy(io.Discard, r)
			return
		}
	}
}

// serveTunneledPortForward serves port-forward as SPDY inside a WebSocket
// (subprotocol SPDY/3.1+portforward.k8s.io): after the WebSocket upgrade
// the connection carries the same SPDY session a SPDY client would open,
// so kubelet's SPDY port-forward handler serves it over the tunnel.
func (s *Server) serveTunneledPortForward(w http.ResponseWriter, r *http.Request, fw executor, pod *corev1.Pod) {
	up := gwebsocket.Upgrader{Subprotocols: []string{portforward.WebsocketsSPDYTunnelingPortForwardV1}, ReadBufferSize: 32 << 10, WriteBufferSize: 32 << 10}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		s.log.Debug("websocket upgrade", "path", r.URL.Path, "err", err)
		return // Upgrade answered the client
	}
	conn := clientportforward.NewTunnelingConnection("portforward-tunnel", ws)
	defer conn.Close()
	inner := r.Clone(r.Context())
	inner.Header = http.Header{}
	inner.Header.Set(httpstream.HeaderConnection, httpstream.HeaderUpgrade)
	inner.Header.Set(httpstream.HeaderUpgrade, spdy.HeaderSpdy31)
	inner.Header.Set(httpstream.HeaderProtocolVersion, portforward.ProtocolV1Name)
	portforward.ServePortForward(&tunnelResponse{conn: conn, header: http.Header{}}, inner, fw, pod.Name, string(pod.UID), nil,
		streamIdleTimeout, streamCreationTimeout, portForwardProtocols)
}

// tunnelResponse is the response of the SPDY upgrade inside a tunnel: the
// WebSocket upgrade already answered the client, so the status line and
// headers go nowhere and the hijacked connection is the tunnel.
type tunnelResponse struct {
	conn   net.Conn
	header http.Header
}

func (t *tunnelResponse) Header() http.Header { return t.header }
func (t *tunnelResponse) WriteHeader(int)     {}
func (t *tunnelResponse) Write(p []byte) (int, error) {
	return 0, errors.New("port-forward tunnel: no response body after the upgrade")
}

func (t *tunnelResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return t.conn, bufio.NewReadWriter(bufio.NewReader(t.conn), bufio.NewWriter(t.conn)), nil
}
