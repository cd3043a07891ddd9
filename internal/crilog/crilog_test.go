package crilog

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func clock() func() time.Time {
	t := time.Date(2026, 12, 4, 3, 30, 0, 123456789, time.UTC)
	return func() time.Time { t = t.Add(time.Second); return t }
}

// TestStreamWritesEntries: a line per entry whatever the chunks, long
// lines in P pieces, an unfinished last line as F on Close.
func TestStreamWritesEntries(t *testing.T) {
	var b bytes.Buffer
	f := NewFile(&b, clock())
	out, errs := f.Stream(Stdout), f.Stream(Stderr)
	out.Write([]byte("hel"))
	errs.Write([]byte("oops\n"))
	out.Write([]byte("lo\nwor"))
	out.Write([]byte("ld\n"))
	out.Write([]byte(strings.Repeat("x", MaxLine+3) + "\n"))
	out.Write([]byte("tail"))
	out.Close()
	want := "2026-12-04T03:30:01.123456789Z stderr F oops\n" +
		"2026-12-04T03:30:02.123456789Z stdout F hello\n" +
		"2026-12-04T03:30:03.123456789Z stdout F world\n" +
		"2026-12-04T03:30:04.123456789Z stdout P " + strings.Repeat("x", MaxLine) + "\n" +
		"2026-12-04T03:30:05.123456789Z stdout F xxx\n" +
		"2026-12-04T03:30:06.123456789Z stdout F tail\n"
	if b.String() != want {
		t.Errorf("log =\n%s\nwant\n%s", b.String(), want)
	}
}

func TestParse(t *testing.T) {
	e := Parse([]byte("2026-12-04T03:30:01.5Z stderr P abc def"))
	if !e.Partial || e.Stream != Stderr || string(e.Message) != "abc def" || e.Time.Nanosecond() != 500000000 {
		t.Errorf("partial entry: %+v", e)
	}
	if e := Parse([]byte("2026-12-04T03:30:01Z stdout F ")); e.Partial || string(e.Message) != "\n" {
		t.Errorf("empty line: %+v", e)
	}
	for _, raw := range []string{"plain output", "2026-12-04 stdout F x", "2026-12-04T03:30:01Z other F x", "2026-12-04T03:30:01Z stdout X x"} {
		if e := Parse([]byte(raw)); !e.Time.IsZero() || string(e.Message) != raw+"\n" {
			t.Errorf("raw line %q: %+v", raw, e)
		}
	}
}

func TestWriterOptions(t *testing.T) {
	log := "2026-12-04T03:30:01Z stdout F one\n" +
		"2026-12-04T03:30:02Z stdout P tw\n" +
		"2026-12-04T03:30:02.5Z stdout F o\n" +
		"old raw line\n" +
		"2026-12-04T03:30:03Z stderr F three\n"
	run := func(opts Options, chunks ...string) (string, error) {
		var b bytes.Buffer
		w := NewWriter(&b, opts)
		var err error
		for _, c := range chunks {
			if _, err = w.Write([]byte(c)); err != nil {
				break
			}
		}
		return b.String(), err
	}
	if got, _ := run(Options{}, log[:10], log[10:50], log[50:]); got != "one\ntwo\nold raw line\nthree\n" {
		t.Errorf("plain = %q", got)
	}
	since := time.Date(2026, 12, 4, 3, 30, 2, 0, time.UTC)
	if got, _ := run(Options{Since: since, Timestamps: true}, log); got != "2026-12-04T03:30:02Z tw2026-12-04T03:30:02.5Z o\nold raw line\n2026-12-04T03:30:03Z three\n" {
		t.Errorf("since+timestamps = %q", got)
	}
	if got, err := run(Options{LimitBytes: 6}, log); got != "one\ntw" || err != ErrLimit {
		t.Errorf("limitBytes = %q, %v", got, err)
	}
	if got, _ := run(Options{}, "2026-12-04T03:30:01Z stdout F unfinish"); got != "" {
		t.Errorf("an unfinished line is written before its end: %q", got)
	}
}
