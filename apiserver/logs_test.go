package apiserver

import (
	"net/url"
	"testing"
	"time"
)

func TestPodLogOptions(t *testing.T) {
	q := url.Values{"sinceTime": {"2026-12-04T03:30:00Z"}, "sinceSeconds": {"5"}, "timestamps": {"true"}, "tailLines": {"3"}, "limitBytes": {"9"}}
	o, err := podLogOptions(q)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Timestamps || *o.TailLines != 3 || *o.LimitBytes != 9 || *o.SinceSeconds != 5 || !o.SinceTime.Time.Equal(time.Date(2026, 12, 4, 3, 30, 0, 0, time.UTC)) {
		t.Errorf("options = %+v", o)
	}
	if _, err := podLogOptions(url.Values{"sinceTime": {"yesterday"}}); err == nil {
		t.Error("a bad sinceTime is accepted")
	}
}
