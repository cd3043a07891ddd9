// Package crilog writes and reads container logs in the CRI format that
// kubelet reads: one entry a line, "<RFC3339Nano time> <stream> <tag>
// <message>", the tag F for the end of a line and P for a piece of a line
// longer than MaxLine (or cut by the end of the output).
package crilog

import (
	"bytes"
	"io"
	"sync"
	"time"
)

// MaxLine is the longest message of one entry, like containerd's CRI
// plugin's default max_container_log_line_size.
const MaxLine = 16 << 10

// Streams names.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// File is the log shared by a container's streams; entries are written
// whole under its lock.
type File struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// NewFile writes entries to w, timed by now (time.Now if nil).
func NewFile(w io.Writer, now func() time.Time) *File {
	if now == nil {
		now = time.Now
	}
	return &File{w: w, now: now}
}

func (f *File) entry(stream string, full bool, msg []byte) error {
	tag := " P "
	if full {
		tag = " F "
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b := make([]byte, 0, len(msg)+48)
	b = f.now().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, tag...)
	b = append(b, msg...)
	b = append(b, '\n')
	_, err := f.w.Write(b)
	return err
}

// Stream writes one stream of a container to a File, an entry for every
// line; Close writes what is left of an unfinished line.
type Stream struct {
	f    *File
	name string
	mu   sync.Mutex
	buf  []byte
}

// Stream returns the writer of the named stream.
func (f *File) Stream(name string) *Stream { return &Stream{f: f, name: name} }

func (s *Stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.buf = append(s.buf, p...)
			p = nil
		} else {
			s.buf = append(s.buf, p[:i]...)
			p = p[i+1:]
			line := s.buf
			for len(line) > MaxLine {
				if err := s.f.entry(s.name, false, line[:MaxLine]); err != nil {
					return 0, err
				}
				line = line[MaxLine:]
			}
			if err := s.f.entry(s.name, true, line); err != nil {
				return 0, err
			}
			s.buf = s.buf[:0]
			continue
		}
		for len(s.buf) >= MaxLine {
			if err := s.f.entry(s.name, false, s.buf[:MaxLine]); err != nil {
				return 0, err
			}
			s.buf = append(s.buf[:0], s.buf[MaxLine:]...)
		}
	}
	return n, nil
}

// Close writes an unfinished last line as a full entry, like containerd
// does at the end of the output.
func (s *Stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buf) == 0 {
		return nil
	}
	err := s.f.entry(s.name, true, s.buf)
	s.buf = nil
	return err
}

// Entry is one parsed line of a log file.
type Entry struct {
	Time    time.Time // zero for a line not in the CRI format
	Stream  string
	Partial bool
	Message []byte // with the newline of a full entry
}

// Parse reads one line of a log file (without its newline). A line that
// is not in the CRI format (a log written raw by an older nanokube) is a
// full entry without a time.
func Parse(line []byte) Entry {
	raw := Entry{Message: append(append([]byte{}, line...), '\n')}
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return raw
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return raw
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok || (string(stream) != Stdout && string(stream) != Stderr) {
		return raw
	}
	tag, msg, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		// "… stdout F" with an empty message has no space after the tag
		// in some writers.
		tag, msg = rest, nil
	}
	e := Entry{Time: t, Stream: string(stream), Message: append([]byte{}, msg...)}
	switch string(tag) {
	case "F":
		e.Message = append(e.Message, '\n')
	case "P":
		e.Partial = true
	default:
		return raw
	}
	return e
}

// Options select and shape what is written of a log, like kubelet's
// PodLogOptions: entries older than Since are skipped, Timestamps puts
// each entry's time before its message, and at most LimitBytes (if > 0)
// are written in all.
type Options struct {
	Since      time.Time
	Timestamps bool
	LimitBytes int64
}

// Writer writes the messages of log entries to w by its Options.
type Writer struct {
	w       io.Writer
	opts    Options
	written int64
	rest    []byte // an unfinished line, until its end is written
}

// NewWriter writes log messages to w.
func NewWriter(w io.Writer, opts Options) *Writer { return &Writer{w: w, opts: opts} }

// ErrLimit: LimitBytes were written.
var ErrLimit = io.ErrShortWrite

// Write takes bytes of a log file, writes the messages of its complete
// lines and keeps an unfinished last line for the next call; ErrLimit
// when LimitBytes are reached.
func (l *Writer) Write(p []byte) (int, error) {
	n := len(p)
	data := p
	if len(l.rest) > 0 {
		data = append(l.rest, p...)
		l.rest = nil
	}
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			l.rest = append([]byte{}, data...)
			break
		}
		if err := l.entry(Parse(data[:i])); err != nil {
			return n, err
		}
		data = data[i+1:]
	}
	return n, nil
}

// Close writes an unfinished last line (a raw log's last output).
func (l *Writer) Close() error {
	if len(l.rest) == 0 {
		return nil
	}
	e := Parse(l.rest)
	l.rest = nil
	if e.Time.IsZero() {
		e.Message = e.Message[:len(e.Message)-1]
	}
	return l.entry(e)
}

func (l *Writer) entry(e Entry) error {
	if !l.opts.Since.IsZero() && !e.Time.IsZero() && e.Time.Before(l.opts.Since) {
		return nil
	}
	msg := e.Message
	if l.opts.Timestamps && !e.Time.IsZero() {
		msg = append(append([]byte(e.Time.Format(time.RFC3339Nano)), ' '), msg...)
	}
	if l.opts.LimitBytes > 0 {
		if left := l.opts.LimitBytes - l.written; int64(len(msg)) > left {
			msg = msg[:left]
		}
	}
	k, err := l.w.Write(msg)
	l.written += int64(k)
	if err != nil {
		return err
	}
	if l.opts.LimitBytes > 0 && l.written >= l.opts.LimitBytes {
		return ErrLimit
	}
	return nil
}
