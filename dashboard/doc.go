// Package dashboard serves nanokube's web dashboard: a small single-page
// application, embedded in the binary, that lists and inspects the
// cluster's objects through the API server's own server-side Tables (the
// same columns kubectl prints) and follows changes with watches.
//
// The server listens on loopback only and proxies /api, /apis and
// /version to the cluster with the admin credentials of the profile, the
// way `kubectl proxy` does. Because anything that can reach it acts as
// cluster admin, it refuses requests whose Host is not its own loopback
// address (DNS rebinding), mutating requests without the dashboard's own
// header (cross-site requests cannot set it without a CORS preflight,
// which the server never grants), and protocol upgrades (exec, attach and
// port-forward stay with kubectl).
package dashboard
