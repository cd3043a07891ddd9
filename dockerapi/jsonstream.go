package dockerapi

import (
	"encoding/json"
	"net/http"
	"sync"
)

// jsonStream writes Docker's progress stream: one JSON message per line,
// {"stream": text}, {"aux": value} or {"errorDetail": {...}, "error": msg},
// flushed as it goes.
type jsonStream struct {
	mu    sync.Mutex
	w     http.ResponseWriter
	enc   *json.Encoder
	flush func()
}

func newJSONStream(w http.ResponseWriter) *jsonStream {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	js := &jsonStream{w: w, enc: json.NewEncoder(w), flush: func() {}}
	if f, ok := w.(http.Flusher); ok {
		js.flush = f.Flush
	}
	return js
}

type jsonMessage struct {
	Stream      string     `json:"stream,omitempty"`
	Aux         any        `json:"aux,omitempty"`
	Error       string     `json:"error,omitempty"`
	ErrorDetail *errDetail `json:"errorDetail,omitempty"`
}

type errDetail struct {
	Message string `json:"message"`
}

func (j *jsonStream) send(m jsonMessage) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.enc.Encode(m)
	j.flush()
}

func (j *jsonStream) stream(text string) { j.send(jsonMessage{Stream: text}) }
func (j *jsonStream) aux(v any)          { j.send(jsonMessage{Aux: v}) }
func (j *jsonStream) fail(msg string) {
	j.send(jsonMessage{Error: msg, ErrorDetail: &errDetail{Message: msg}})
}

// Write makes the stream an io.Writer of text (build progress).
func (j *jsonStream) Write(p []byte) (int, error) {
	if len(p) > 0 {
		j.stream(string(p))
	}
	return len(p), nil
}
