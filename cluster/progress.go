package cluster

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// ProgressFD is the file descriptor on which the daemon reports its start
// steps to the `start` command that spawned it.
const ProgressFD = 3

// Progress is one line of the daemon's start report.
type Progress struct {
	Step  string `json:"step,omitempty"`  // a step that finished, e.g. "Opened the store"
	Ready bool   `json:"ready,omitempty"` // the cluster is usable
	Error string `json:"error,omitempty"` // start failed
	// Nodes names the nodes a node operation of the control socket added
	// or removed (in its last line).
	Nodes []string `json:"nodes,omitempty"`
}

// ProgressWriter is the daemon's end of the report pipe. A nil writer
// (daemon started by hand) discards everything.
type ProgressWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
	c   io.Closer
}

// NewProgressWriter wraps the pipe; w may be nil.
func NewProgressWriter(w io.WriteCloser) *ProgressWriter {
	if w == nil {
		return &ProgressWriter{}
	}
	return &ProgressWriter{enc: json.NewEncoder(w), c: w}
}

// Send reports one event; errors are ignored because the reader may be gone
// (the user pressed Ctrl-C on start), which must not stop the daemon.
func (p *ProgressWriter) Send(ev Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.enc == nil {
		return
	}
	_ = p.enc.Encode(ev)
	if ev.Ready || ev.Error != "" {
		_ = p.c.Close()
		p.enc = nil
	}
}

// Step reports a finished step.
func (p *ProgressWriter) Step(format string, args ...any) {
	p.Send(Progress{Step: fmt.Sprintf(format, args...)})
}

// readProgress prints each step with the time since begin and returns when
// the daemon reports ready, an error, or closes the pipe.
func readProgress(r io.Reader, out io.Writer, begin time.Time) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var ev Progress
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("read daemon progress: %w", err)
		}
		switch {
		case ev.Error != "":
			return fmt.Errorf("daemon failed to start: %s", ev.Error)
		case ev.Ready:
			return nil
		case ev.Step != "":
			fmt.Fprintf(out, "  ✓ %-44s %6s\n", ev.Step, formatElapsed(time.Since(begin)))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read daemon progress: %w", err)
	}
	return errDaemonExited
}

func formatElapsed(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
