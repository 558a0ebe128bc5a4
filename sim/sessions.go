package main

// Session drops: vCenter ends a session when it times out, when an administrator
// terminates it, or when vpxd restarts. The client only learns on its next call: a method
// fails with NotAuthenticated, and a property read comes back with each property in
// missingSet carrying NotAuthenticated (vcsim does the same for calls without a session).
//
// A fault rule with mode "drop-session" ends the session of the call it matches: that call
// and every later call with the same session cookie are served as if not logged in, until
// the client logs in again (a new cookie).

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type sessionDrops struct {
	mu   sync.Mutex
	keys map[string]bool
	n    atomic.Int32
}

var drops = &sessionDrops{keys: map[string]bool{}}

// drop ends the session of r (if it has one) and returns r without it. What the session
// held on the server goes with it, as on a logout: its collectors' filters and the waits
// parked on them (they end with RequestCanceled, sim/delivery.go; vcsim's session object
// still exists, so without this a parked wait would answer the next change, or wait for
// ever) and its paging tokens (sim/paging.go).
func (d *sessionDrops) drop(r *http.Request) *http.Request {
	if c, err := r.Cookie(soap.SessionCookieName); err == nil && c.Value != "" {
		d.mu.Lock()
		first := !d.keys[c.Value]
		if first {
			d.keys[c.Value] = true
			d.n.Add(1)
		}
		d.mu.Unlock()
		if first {
			paging.forget(c.Value, "")
			delivery.forgetSession(c.Value)
		}
	}
	return d.strip(r)
}

// strip removes a dropped session's cookie from r; cheap when nothing was ever dropped.
func (d *sessionDrops) strip(r *http.Request) *http.Request {
	if d.n.Load() == 0 {
		return r
	}
	c, err := r.Cookie(soap.SessionCookieName)
	if err != nil {
		return r
	}
	d.mu.Lock()
	dropped := d.keys[c.Value]
	d.mu.Unlock()
	if !dropped {
		return r
	}
	out := r.Clone(r.Context())
	out.Header.Del("Cookie")
	for _, other := range r.Cookies() {
		if other.Name != soap.SessionCookieName {
			out.AddCookie(other)
		}
	}
	return out
}

// sessionMiddleware serves every request of a dropped session as one without a session.
func sessionMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, drops.strip(r))
	})
}

// retrievedObjects lists the starting objects of a property read, so that an injected
// fault's "object" can target the read of one VM or host (a step's re-read).
func retrievedObjects(m *simulator.Method) []types.ManagedObjectReference {
	var specs []types.PropertyFilterSpec
	switch req := m.Body.(type) {
	case *types.RetrievePropertiesEx:
		specs = req.SpecSet
	case *types.RetrieveProperties:
		specs = req.SpecSet
	default:
		return nil
	}
	var out []types.ManagedObjectReference
	for _, spec := range specs {
		for _, o := range spec.ObjectSet {
			out = append(out, o.Obj)
		}
	}
	return out
}

// validDropSession checks a "drop-session" rule: the client sees NotAuthenticated.
func validDropSession(rule *faultRule) string {
	if rule.Mode == "drop-session" && !strings.EqualFold(rule.Fault, "NotAuthenticated") {
		return "mode \"drop-session\": fault must be NotAuthenticated (what the client then sees)"
	}
	return ""
}
