package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nanokube/nanokube/internal/lines"
)

// Logs prints the daemon's log: the last n lines (0 = all), then, with
// follow, new lines as they are written until ctx ends.
func Logs(ctx context.Context, p Profile, w io.Writer, n int, follow bool) error {
	if !p.Exists() {
		return errNoProfile(p)
	}
	f, err := os.Open(p.LogFile())
	if err != nil {
		return fmt.Errorf("open daemon log: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("read daemon log: %w", err)
	}
	if n > 0 {
		b = lines.Last(b, n)
	}
	if _, err := w.Write(b); err != nil || !follow {
		return err
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := io.Copy(w, f); err != nil {
			return fmt.Errorf("follow daemon log: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// ProfileInfo is one row of `nanokube profile list`.
type ProfileInfo struct {
	Name   string `json:"name"`
	Driver string `json:"driver"`
	Nodes  int    `json:"nodes"`
	IP     string `json:"ip"`
	Status string `json:"status"`
}

// ListProfileInfo describes every profile under home.
func ListProfileInfo(ctx context.Context, home string) ([]ProfileInfo, error) {
	names, err := ListProfiles(home)
	if err != nil {
		return nil, err
	}
	infos := []ProfileInfo{}
	for _, n := range names {
		p := NewProfile(home, n)
		cfg, err := p.LoadConfig()
		if err != nil {
			return nil, fmt.Errorf("profile %q: %w", n, err)
		}
		info := ProfileInfo{Name: n, Driver: cfg.Driver, Nodes: cfg.Nodes, Status: "Stopped"}
		if st, err := p.LoadState(); err == nil && len(st.Nodes) > 0 {
			info.IP, info.Nodes = st.Nodes[0].IP, len(st.Nodes)
		}
		if _, running := DaemonRunning(p); running {
			info.Status = "Running"
		}
		infos = append(infos, info)
	}
	return infos, nil
}
