package main

import (
	"strings"
	"testing"
)

func TestImageTableLikeMinikube(t *testing.T) {
	var b strings.Builder
	rows := []imageRow{}
	for _, r := range []struct {
		ref, id string
		size    int64
	}{
		{"docker.io/library/busybox:1.36", "sha256:0123456789abcdef0123", 1462000},
		{"127.0.0.1:5000/app@sha256:ff", "sha256:fedcba9876543210", 744},
	} {
		repo, tag := splitRef(r.ref)
		rows = append(rows, imageRow{Repository: repo, Tag: tag, ID: r.id, Size: r.size})
	}
	if err := writeImageTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	want := `|---------------------------|--------|---------------|---------|
|           IMAGE           |  TAG   |   IMAGE ID    |  SIZE   |
|---------------------------|--------|---------------|---------|
| docker.io/library/busybox | 1.36   | 0123456789abc | 1.462MB |
| 127.0.0.1:5000/app        | <none> | fedcba9876543 | 744B    |
|---------------------------|--------|---------------|---------|
`
	if got := b.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}
