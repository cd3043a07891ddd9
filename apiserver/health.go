package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// health serves /healthz, /livez and /readyz (with ?verbose like
// kube-apiserver) and their per-check paths.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	checks := []string{"ping", "log", "etcd"}
	if r.URL.Path == "/readyz" {
		select {
		case <-s.ready:
		default:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintln(w, "[-]bootstrap failed: not finished")
			return
		}
		checks = append(checks, "informer-sync", "poststarthook/bootstrap")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if _, verbose := r.URL.Query()["verbose"]; verbose {
		for _, c := range checks {
			fmt.Fprintf(w, "[+]%s ok\n", c)
		}
		fmt.Fprintf(w, "%s check passed\n", r.URL.Path[1:])
		return
	}
	fmt.Fprint(w, "ok")
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	b, _ := json.MarshalIndent(s.cfg.Version, "", "  ")
	w.Write(b)
}
