// Package ingress is nanokube's built-in ingress controller: it serves the
// Ingresses of IngressClass "nanokube" (controller "nanokube.io/ingress")
// on ports 80 and 443 of every node IP.
//
// The Controller turns Ingresses, Services, EndpointSlices and TLS Secrets
// into a Table: an immutable routing snapshot (hosts → paths → backends
// with their ready endpoints, hosts → certificates) that is swapped
// atomically on every change. Listeners and connections never restart; a
// request is routed with whatever Table was current when it arrived.
//
// Routing follows the Ingress spec and ingress-nginx's habits: exact hosts
// before wildcard hosts (`*.foo.com`, one label), rules without a host for
// everything else; within a host the longest matching path wins, Exact
// before Prefix on a tie; Prefix matches path elements (`/foo` matches
// `/foo/bar`, not `/foobar`); ImplementationSpecific is Prefix. No match
// goes to the oldest Ingress's defaultBackend, or answers 404. A backend
// without ready endpoints answers 503; otherwise requests are spread round
// robin over the ready endpoint IPs, and a failed connect is retried on
// the next endpoint. Plain HTTP to a host listed under an Ingress's tls is
// redirected with 308 to https (ingress-nginx's ssl-redirect default).
package ingress
