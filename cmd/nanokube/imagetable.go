package main

import (
	"fmt"
	"io"
	"strings"
)

// imageRow is one line of `nanokube image ls`.
type imageRow struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	ID         string `json:"id"`
	Size       int64  `json:"size"`
}

// splitRef splits a full reference into repository and tag (<none> for a
// digest-only reference).
func splitRef(ref string) (string, string) {
	if repo, _, ok := strings.Cut(ref, "@"); ok {
		return repo, "<none>"
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[:i], ref[i+1:]
	}
	return ref, "latest"
}

// shortID is the image ID as minikube shows it: 13 hex digits.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 13 {
		id = id[:13]
	}
	return id
}

// humanSize is docker's units.HumanSize: decimal units, 4 significant digits.
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}

// writeImageTable draws the rows as `minikube image ls --format table` does.
func writeImageTable(w io.Writer, rows []imageRow) error {
	head := []string{"IMAGE", "TAG", "IMAGE ID", "SIZE"}
	cells := [][]string{}
	width := make([]int, len(head))
	for i, h := range head {
		width[i] = len(h)
	}
	for _, r := range rows {
		line := []string{r.Repository, r.Tag, shortID(r.ID), humanSize(r.Size)}
		for i, c := range line {
			width[i] = max(width[i], len(c))
		}
		cells = append(cells, line)
	}
	var b strings.Builder
	rule := func() {
		for _, wd := range width {
			b.WriteString("|" + strings.Repeat("-", wd+2))
		}
		b.WriteString("|\n")
	}
	rule()
	for i, h := range head {
		pad := width[i] - len(h)
		fmt.Fprintf(&b, "| %s%s%s ", strings.Repeat(" ", pad/2), h, strings.Repeat(" ", pad-pad/2))
	}
	b.WriteString("|\n")
	rule()
	for _, line := range cells {
		for i, c := range line {
			fmt.Fprintf(&b, "| %-*s ", width[i], c)
		}
		b.WriteString("|\n")
	}
	rule()
	_, err := io.WriteString(w, b.String())
	return err
}
