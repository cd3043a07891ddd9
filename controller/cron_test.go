package controller

import (
	"testing"
	"time"
)

func TestCronNext(t *testing.T) {
	utc := "UTC"
	base := time.Date(2026, 11, 24, 23, 58, 30, 0, time.UTC) // a Tuesday
	cases := []struct {
		spec string
		want string
	}{
		{"* * * * *", "2026-11-24T23:59:00Z"},
		{"*/15 * * * *", "2026-11-25T00:00:00Z"},
		{"0 9 * * 1-5", "2026-11-25T09:00:00Z"},
		{"30 6 1 * *", "2026-12-01T06:30:00Z"},
		{"@hourly", "2026-11-25T00:00:00Z"},
		{"0 0 * * 0", "2026-11-29T00:00:00Z"},
		{"0 0 * * 7", "2026-11-29T00:00:00Z"},
		{"CRON_TZ=Asia/Tokyo 0 9 * * *", "2026-11-25T00:00:00Z"}, // 09:00 JST
	}
	for _, c := range cases {
		s, err := parseCron(c.spec, &utc)
		if err != nil {
			t.Fatalf("parseCron(%q): %v", c.spec, err)
		}
		if got := s.next(base).UTC().Format(time.RFC3339); got != c.want {
			t.Errorf("next(%q) = %s, want %s", c.spec, got, c.want)
		}
	}
	for _, bad := range []string{"* * * *", "61 * * * *", "*/0 * * * *", "a b c d e"} {
		if _, err := parseCron(bad, &utc); err == nil {
			t.Errorf("parseCron(%q) accepted a bad schedule", bad)
		}
	}
}
