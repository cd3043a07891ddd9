// Command hello is a tiny static HTTP server for image build tests: it
// answers every request with "hello from <the contents of /msg>".
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	addr := ":8080"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		msg, err := os.ReadFile("/msg")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "hello from %s\n", strings.TrimSpace(string(msg)))
	})
	// As PID 1 of its container it must handle SIGTERM itself, or the
	// kernel ignores it and the pod waits out its grace period.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv := &http.Server{Addr: addr}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Printf("listening on %s", addr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
