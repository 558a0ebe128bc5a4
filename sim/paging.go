package main

// vCenter-style paging of the property collector.
//
// Debian's govmomi 0.24 answers the initial WaitForUpdatesEx in one piece, ignores
// WaitOptions.maxObjectUpdates and RetrieveOptions.maxObjects, and has no
// ContinueRetrievePropertiesEx or CancelRetrievePropertiesEx. A real vCenter pages both:
//
//   - WaitForUpdatesEx: the API reference (WaitOptions.maxObjectUpdates, UpdateSet.truncated)
//     says the collector suspends the change calculation when the count of ObjectUpdate
//     entries, summed over every PropertyFilterUpdate, reaches maxObjectUpdates, and that
//     "PropertyCollector policy may still limit" it further; vCenter's policy is 100 objects
//     a page. A truncated page has truncated=true and a "truncated data version" that may be
//     used once, only for the next WaitForUpdatesEx; a reused or stale one is refused with
//     InvalidCollectorVersion.
//   - RetrievePropertiesEx: RetrieveOptions.maxObjects caps a result; unset, policy limits it
//     (vCenter returns 100 objects and a token). The rest is read with
//     ContinueRetrievePropertiesEx(token), each token used once, in the same session on the
//     same collector, or dropped with CancelRetrievePropertiesEx; a bad token is
//     InvalidProperty (name "token"), the fault the reference lists for both methods.
//
// The pager sits between the fault/strict middleware and vcsim: it lets vcsim compute the
// whole answer, then cuts the XML into pages at ObjectUpdate / ObjectContent boundaries (the
// bytes of each object are vcsim's own, so nothing is re-encoded) and serves the rest from
// memory. Changes made while a client is still paging accumulate in vcsim's collector and
// come in the first answer after the last page, as modifications.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/ioutil"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// vcenterPageObjects is vCenter's own cap on a page (WaitForUpdatesEx and, with maxObjects
// unset, RetrievePropertiesEx).
const vcenterPageObjects = 100

// truncatedPrefix marks a truncated data version handed out by the pager.
const truncatedPrefix = "vha-truncated-"

// maxPending bounds the paged results kept for clients that never come back for the rest.
const maxPending = 512

type pagingConfig struct {
	Enabled          bool          // page at all (-paging; POST /api/v1/config {"paging": ...})
	MaxObjectUpdates int           // policy cap of a WaitForUpdatesEx page
	MaxObjects       int           // policy cap of a RetrievePropertiesEx page when unset
	MaxObjectsCap    int           // policy cap even when maxObjects is set (0 = honour it)
	PageDelay        time.Duration // before each stored page: lets tests land a change between pages
}

// updatePages is the rest of a truncated WaitForUpdatesEx answer for one collector.
type updatePages struct {
	version string // the truncated data version the client must pass next
	real    string // vcsim's version, handed out with the last page
	head    []byte // the response up to and including <returnval>
	tail    []byte // from </returnval> to the end
	filters []filterPart
	created time.Time
}

type filterPart struct {
	open    []byte   // <filterSet ...>
	filter  []byte   // <filter ...>...</filter>
	objects [][]byte // <objectSet>...</objectSet>, one per ObjectUpdate
	rest    []byte   // missingSet elements, sent with the filter's last page
}

// retrievePages is the rest of a RetrievePropertiesEx result behind one token.
type retrievePages struct {
	owner   string // session cookie + collector
	limit   int
	objects [][]byte
	created time.Time
}

type pager struct {
	mu         sync.Mutex
	cfg        pagingConfig
	updates    map[string]*updatePages   // session cookie + collector -> pending pages
	retrievals map[string]*retrievePages // token -> pending objects
	seq        uint64

	truncatedPages atomic.Int64 // truncated WaitForUpdatesEx pages served
	continuedPages atomic.Int64 // ContinueRetrievePropertiesEx pages served
	tokensIssued   atomic.Int64 // RetrievePropertiesEx answers that carried a token
}

var paging = &pager{
	cfg:        pagingConfig{Enabled: true, MaxObjectUpdates: vcenterPageObjects, MaxObjects: vcenterPageObjects},
	updates:    map[string]*updatePages{},
	retrievals: map[string]*retrievePages{},
}

func (p *pager) config() pagingConfig {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

func (p *pager) setEnabled(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg.Enabled = on
	if !on {
		p.updates = map[string]*updatePages{}
		p.retrievals = map[string]*retrievePages{}
	}
}

func (p *pager) json() map[string]interface{} {
	c := p.config()
	p.mu.Lock()
	pendingUpdates, pendingRetrievals := len(p.updates), len(p.retrievals)
	p.mu.Unlock()
	return map[string]interface{}{
		"pendingUpdates":    pendingUpdates,
		"pendingRetrievals": pendingRetrievals,
		"maxObjectsCap":     c.MaxObjectsCap,
		"enabled":           c.Enabled,
		"maxObjectUpdates":  c.MaxObjectUpdates,
		"maxObjects":        c.MaxObjects,
		"pageDelayMs":       c.PageDelay.Milliseconds(),
		"truncatedPages":    p.truncatedPages.Load(),
		"continuedPages":    p.continuedPages.Load(),
		"tokensIssued":      p.tokensIssued.Load(),
	}
}

// parseConfig validates a {"paging": {...}} body against the current settings; nothing is
// applied until every key is valid.
func (p *pager) parseConfig(raw json.RawMessage) (pagingConfig, *apiError) {
	c := p.config()
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil || body == nil {
		return c, errf(http.StatusBadRequest, "paging: expected an object")
	}
	allowed := []string{"enabled", "maxObjectUpdates", "maxObjects", "maxObjectsCap", "pageDelayMs"}
	for _, k := range sortedKeys(body) {
		v := body[k]
		switch k {
		case "enabled":
			b, err := boolValue("paging.enabled", v)
			if err != nil {
				return c, err
			}
			c.Enabled = b
		case "maxObjectUpdates", "maxObjects":
			var n int
			if err := json.Unmarshal(v, &n); err != nil || n < 1 || n > 1000000 {
				return c, errf(http.StatusBadRequest, "paging.%s: expected an integer from 1 to 1000000", k)
			}
			if k == "maxObjects" {
				c.MaxObjects = n
			} else {
				c.MaxObjectUpdates = n
			}
		case "maxObjectsCap":
			var n int
			if err := json.Unmarshal(v, &n); err != nil || n < 0 || n > 1000000 {
				return c, errf(http.StatusBadRequest, "paging.maxObjectsCap: expected an integer from 0 (none) to 1000000")
			}
			c.MaxObjectsCap = n
		case "pageDelayMs":
			var n int
			if err := json.Unmarshal(v, &n); err != nil || n < 0 || n > 60000 {
				return c, errf(http.StatusBadRequest, "paging.pageDelayMs: expected an integer from 0 to 60000")
			}
			c.PageDelay = time.Duration(n) * time.Millisecond
		default:
			return c, unknownKey("paging."+k, allowed)
		}
	}
	return c, nil
}

func (p *pager) apply(c pagingConfig) {
	p.setEnabled(c.Enabled)
	p.mu.Lock()
	p.cfg = c
	p.mu.Unlock()
}

// handler wraps vcsim's SDK mux; every SOAP call that reaches vcsim passes through it.
func (p *pager) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, name, handled := readSOAPCall(w, r, next)
		if handled {
			return
		}
		cookie := ""
		if c, cerr := r.Cookie(soap.SessionCookieName); cerr == nil {
			cookie = c.Value
		}
		switch name {
		case "WaitForUpdatesEx", "RetrievePropertiesEx", "ContinueRetrievePropertiesEx", "CancelRetrievePropertiesEx":
		case "Logout":
			p.forget(cookie, "")
			delivery.forgetSession(cookie) // sim/delivery.go
			next.ServeHTTP(w, r)
			return
		case "DestroyPropertyCollector":
			if m, derr := decodeSOAP(body); derr == nil {
				p.forget(cookie, m.This.Value)
			}
			next.ServeHTTP(w, r)
			return
		default:
			next.ServeHTTP(w, r)
			return
		}
		if !p.config().Enabled || cookie == "" {
			next.ServeHTTP(w, r) // vcsim's own behaviour (and its NotAuthenticated)
			return
		}
		m, derr := decodeSOAP(body)
		if derr != nil {
			next.ServeHTTP(w, r)
			return
		}
		owner := cookie + "|" + m.This.Value
		switch req := m.Body.(type) {
		case *types.WaitForUpdatesEx:
			p.waitForUpdatesEx(w, r, next, owner, req)
		case *types.RetrievePropertiesEx:
			p.retrievePropertiesEx(w, r, next, owner, req)
		case *types.ContinueRetrievePropertiesEx:
			if f := sessionFault(next, r); f != nil {
				f.flush(w, f.body.Bytes())
				return
			}
			p.continueRetrieve(w, owner, req.Token)
		case *types.CancelRetrievePropertiesEx:
			if f := sessionFault(next, r); f != nil {
				f.flush(w, f.body.Bytes())
				return
			}
			p.cancelRetrieve(w, owner, req.Token)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// forget drops what a session (collector "" = all of its collectors) still had pending.
func (p *pager) forget(cookie, collector string) {
	if cookie == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	match := func(owner string) bool {
		if collector == "" {
			return strings.HasPrefix(owner, cookie+"|")
		}
		return owner == cookie+"|"+collector
	}
	for k := range p.updates {
		if match(k) {
			delete(p.updates, k)
		}
	}
	for t, rp := range p.retrievals {
		if match(rp.owner) {
			delete(p.retrievals, t)
		}
	}
}

// prune keeps the pending maps bounded (oldest first). Callers hold p.mu.
func (p *pager) prune() {
	dropOldest(p.updates, func(u *updatePages) time.Time { return u.created })
	dropOldest(p.retrievals, func(rp *retrievePages) time.Time { return rp.created })
}

// dropOldest deletes the entries of m created first until at most maxPending remain.
func dropOldest[V any](m map[string]V, created func(V) time.Time) {
	for len(m) > maxPending {
		var oldest string
		for k, v := range m {
			if oldest == "" || created(v).Before(created(m[oldest])) {
				oldest = k
			}
		}
		delete(m, oldest)
	}
}

func (p *pager) nextID() string {
	p.seq++
	return fmt.Sprintf("%d-%d", time.Now().UnixNano(), p.seq)
}

// sessionFault asks vcsim whether the caller's session is still logged in (CurrentTime
// with the same cookie) before anything is served from memory; it returns vcsim's fault
// answer (NotAuthenticated for an expired, terminated or unknown session), or nil.
func sessionFault(next http.Handler, r *http.Request) *bufferedResponse {
	body := []byte(envelopeStart + `<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></CurrentTime>` + envelopeEnd)
	probe := r.Clone(r.Context())
	probe.Body = ioutil.NopCloser(bytes.NewReader(body))
	probe.ContentLength = int64(len(body))
	probe.Header.Set("SOAPAction", "urn:vim25/"+"CurrentTime")
	rec := forward(next, probe)
	if rec.status == http.StatusOK {
		return nil
	}
	return rec
}

// forward lets vcsim answer and returns its response, unsent.
func forward(next http.Handler, r *http.Request) *bufferedResponse {
	rec := newBufferedResponse()
	next.ServeHTTP(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec
}

func (p *pager) waitForUpdatesEx(w http.ResponseWriter, r *http.Request, next http.Handler, owner string, req *types.WaitForUpdatesEx) {
	c := p.config()
	limit := c.MaxObjectUpdates
	if o := req.Options; o != nil && o.MaxObjectUpdates != 0 {
		if o.MaxObjectUpdates < 0 {
			writeSOAPFault(w, "A specified parameter was not correct: options.maxObjectUpdates",
				&types.InvalidArgument{InvalidProperty: "options.maxObjectUpdates"})
			return
		}
		if int(o.MaxObjectUpdates) < limit {
			limit = int(o.MaxObjectUpdates)
		}
	}
	p.mu.Lock()
	pending := p.updates[owner]
	p.mu.Unlock()
	if pending != nil && req.Version == pending.version {
		if c.PageDelay > 0 { // the rest stays pending (and visible) during the delay
			time.Sleep(c.PageDelay)
		}
		if f := sessionFault(next, r); f != nil {
			f.flush(w, f.body.Bytes())
			return
		}
		p.mu.Lock()
		taken := p.updates[owner] == pending
		if taken {
			delete(p.updates, owner)
		}
		p.mu.Unlock()
		if taken {
			p.serveUpdatePage(w, owner, pending, limit)
			return
		}
	} else if pending != nil { // the client gave up on the rest: vCenter forgets it too
		p.mu.Lock()
		if p.updates[owner] == pending {
			delete(p.updates, owner)
		}
		p.mu.Unlock()
	}
	if strings.HasPrefix(req.Version, truncatedPrefix) {
		writeSOAPFault(w, "The collector version is not valid: a truncated data version is used once, for the next WaitForUpdatesEx",
			&types.InvalidCollectorVersion{})
		return
	}
	rec := forward(next, r)
	out := rec.body.Bytes()
	if rec.status != http.StatusOK {
		rec.flush(w, out)
		return
	}
	pages, ok := splitUpdateSet(out)
	if !ok || pages.count() <= limit {
		rec.flush(w, out)
		return
	}
	pages.created = time.Now()
	p.serveUpdatePage(w, owner, pages, limit)
}

func (u *updatePages) count() int {
	n := 0
	for _, f := range u.filters {
		n += len(f.objects)
	}
	return n
}

// serveUpdatePage writes the next page of u (at most limit ObjectUpdates) and keeps the rest.
func (p *pager) serveUpdatePage(w http.ResponseWriter, owner string, u *updatePages, limit int) {
	var b bytes.Buffer
	b.Write(u.head)
	left := limit
	var rest []filterPart
	var page bytes.Buffer
	for i, f := range u.filters {
		if left == 0 {
			rest = append(rest, u.filters[i:]...)
			break
		}
		take := len(f.objects)
		if take > left {
			take = left
		}
		left -= take
		page.Write(f.open)
		page.Write(f.filter)
		for _, o := range f.objects[:take] {
			page.Write(o)
		}
		if take == len(f.objects) {
			page.Write(f.rest)
		} else {
			rest = append(rest, filterPart{open: f.open, filter: f.filter, objects: f.objects[take:], rest: f.rest})
			rest = append(rest, u.filters[i+1:]...)
			page.WriteString(`</filterSet>`)
			break
		}
		page.WriteString(`</filterSet>`)
	}
	version := u.real
	if len(rest) > 0 {
		p.mu.Lock()
		version = truncatedPrefix + p.nextID()
		p.updates[owner] = &updatePages{version: version, real: u.real, head: u.head, tail: u.tail, filters: rest, created: u.created}
		p.prune()
		p.mu.Unlock()
		p.truncatedPages.Add(1)
	}
	b.WriteString(`<version>`)
	_ = xml.EscapeText(&b, []byte(version))
	b.WriteString(`</version>`)
	b.Write(page.Bytes())
	if len(rest) > 0 {
		b.WriteString(`<truncated>true</truncated>`)
	}
	b.Write(u.tail)
	writeXML(w, b.Bytes())
}

func writeXML(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func (p *pager) retrievePropertiesEx(w http.ResponseWriter, r *http.Request, next http.Handler, owner string, req *types.RetrievePropertiesEx) {
	limit := p.config().MaxObjects
	if n := req.Options.MaxObjects; n < 0 {
		writeSOAPFault(w, "A specified parameter was not correct: options.maxObjects",
			&types.InvalidArgument{InvalidProperty: "options.maxObjects"})
		return
	} else if n > 0 {
		limit = int(n)
	}
	if cap := p.config().MaxObjectsCap; cap > 0 && cap < limit {
		limit = cap // "PropertyCollector policy may still limit the count to something less"
	}
	rec := forward(next, r)
	out := rec.body.Bytes()
	if rec.status != http.StatusOK {
		rec.flush(w, out)
		return
	}
	head, objects, tail, ok := splitRetrieveResult(out)
	if !ok || len(objects) <= limit {
		rec.flush(w, out)
		return
	}
	p.mu.Lock()
	token := p.nextID()
	p.retrievals[token] = &retrievePages{owner: owner, limit: limit, objects: objects[limit:], created: time.Now()}
	p.prune()
	p.mu.Unlock()
	p.tokensIssued.Add(1)
	writeXML(w, retrieveBody(head, token, objects[:limit], tail))
}

// retrieveBody builds a RetrieveResult: token first, then objects (the WSDL's order).
func retrieveBody(head []byte, token string, objects [][]byte, tail []byte) []byte {
	var b bytes.Buffer
	b.Write(head)
	if token != "" {
		b.WriteString(`<token>`)
		_ = xml.EscapeText(&b, []byte(token))
		b.WriteString(`</token>`)
	}
	for _, o := range objects {
		b.Write(o)
	}
	b.Write(tail)
	return b.Bytes()
}

// takeToken removes and returns the pages behind token if owner may use it.
func (p *pager) takeToken(owner, token string) *retrievePages {
	p.mu.Lock()
	defer p.mu.Unlock()
	rp := p.retrievals[token]
	if rp == nil || rp.owner != owner {
		return nil
	}
	delete(p.retrievals, token)
	return rp
}

func badToken(w http.ResponseWriter) {
	writeSOAPFault(w, "InvalidProperty: token (unknown, already used, or from another session or collector)",
		&types.InvalidProperty{Name: "token"})
}

func (p *pager) continueRetrieve(w http.ResponseWriter, owner, token string) {
	rp := p.takeToken(owner, token)
	if rp == nil {
		badToken(w)
		return
	}
	if d := p.config().PageDelay; d > 0 {
		time.Sleep(d)
	}
	take := rp.limit
	if take > len(rp.objects) {
		take = len(rp.objects)
	}
	next := ""
	if take < len(rp.objects) {
		p.mu.Lock()
		next = p.nextID()
		p.retrievals[next] = &retrievePages{owner: owner, limit: rp.limit, objects: rp.objects[take:], created: rp.created}
		p.mu.Unlock()
	}
	p.continuedPages.Add(1)
	head := []byte(envelopeStart + `<ContinueRetrievePropertiesExResponse xmlns="urn:vim25"><returnval>`)
	tail := []byte(`</returnval></ContinueRetrievePropertiesExResponse>` + envelopeEnd)
	writeXML(w, retrieveBody(head, next, rp.objects[:take], tail))
}

func (p *pager) cancelRetrieve(w http.ResponseWriter, owner, token string) {
	if p.takeToken(owner, token) == nil {
		badToken(w)
		return
	}
	writeXML(w, []byte(envelopeStart+`<CancelRetrievePropertiesExResponse xmlns="urn:vim25"></CancelRetrievePropertiesExResponse>`+envelopeEnd))
}

// ---- cutting vcsim's XML at element boundaries ------------------------------------------

// xmlElem is one element: b[start:end] is all of it, b[innerStart:innerEnd] its content.
type xmlElem struct {
	name                             string
	start, innerStart, innerEnd, end int
}

// childElements lists the elements directly inside b[from:to]. vcsim's encoder escapes
// '<' and '>' in text and attribute values and writes no comments or CDATA, so a scan of
// tags is exact.
func childElements(b []byte, from, to int) ([]xmlElem, bool) {
	var out []xmlElem
	depth := 0
	var cur xmlElem
	for i := from; i < to; {
		lt := bytes.IndexByte(b[i:to], '<')
		if lt < 0 {
			break
		}
		lt += i
		gt := bytes.IndexByte(b[lt:to], '>')
		if gt < 0 {
			return nil, false
		}
		gt += lt
		i = gt + 1
		switch {
		case lt+1 < to && b[lt+1] == '/':
			depth--
			if depth < 0 {
				return nil, false
			}
			if depth == 0 {
				cur.innerEnd, cur.end = lt, gt+1
				out = append(out, cur)
			}
		case lt+1 < to && (b[lt+1] == '?' || b[lt+1] == '!'):
			return nil, false // not produced by vcsim: leave the answer alone
		default:
			selfClosing := b[gt-1] == '/'
			if depth == 0 {
				name := b[lt+1 : gt]
				if k := bytes.IndexAny(name, " \t\r\n/"); k >= 0 {
					name = name[:k]
				}
				cur = xmlElem{name: string(name), start: lt, innerStart: gt + 1}
				if selfClosing {
					cur.innerEnd, cur.end = gt+1, gt+1
					out = append(out, cur)
					continue
				}
			}
			if !selfClosing {
				depth++
			}
		}
	}
	if depth != 0 {
		return nil, false
	}
	return out, true
}

// returnval finds the <returnval> of a response body: the first one, as the response
// element's first child; ok is false for a null result or anything unexpected.
func returnval(b []byte) (xmlElem, bool) {
	start := bytes.Index(b, []byte("<returnval"))
	end := bytes.LastIndex(b, []byte("</returnval>"))
	if start < 0 || end < start {
		return xmlElem{}, false
	}
	els, ok := childElements(b, start, end+len("</returnval>"))
	if !ok || len(els) != 1 || els[0].name != "returnval" {
		return xmlElem{}, false
	}
	return els[0], true
}

// splitUpdateSet cuts a WaitForUpdatesExResponse into its filters' ObjectUpdates.
func splitUpdateSet(b []byte) (*updatePages, bool) {
	rv, ok := returnval(b)
	if !ok {
		return nil, false
	}
	children, ok := childElements(b, rv.innerStart, rv.innerEnd)
	if !ok {
		return nil, false
	}
	u := &updatePages{head: b[:rv.innerStart], tail: b[rv.innerEnd:]}
	for _, c := range children {
		switch c.name {
		case "version":
			u.real = xmlText(b[c.innerStart:c.innerEnd])
		case "filterSet":
			parts, ok := childElements(b, c.innerStart, c.innerEnd)
			if !ok {
				return nil, false
			}
			f := filterPart{open: b[c.start:c.innerStart]}
			for _, e := range parts {
				switch e.name {
				case "filter":
					f.filter = b[e.start:e.end]
				case "objectSet":
					f.objects = append(f.objects, b[e.start:e.end])
				default:
					f.rest = append(f.rest, b[e.start:e.end]...)
				}
			}
			u.filters = append(u.filters, f)
		case "truncated":
			return nil, false // already paged (not by vcsim 0.24): leave it alone
		default:
			return nil, false
		}
	}
	return u, true
}

// splitRetrieveResult cuts a RetrievePropertiesExResponse into its ObjectContents.
func splitRetrieveResult(b []byte) (head []byte, objects [][]byte, tail []byte, ok bool) {
	rv, ok := returnval(b)
	if !ok {
		return nil, nil, nil, false
	}
	children, ok := childElements(b, rv.innerStart, rv.innerEnd)
	if !ok {
		return nil, nil, nil, false
	}
	for _, c := range children {
		if c.name != "objects" {
			return nil, nil, nil, false // a token already, or something unknown
		}
		objects = append(objects, b[c.start:c.end])
	}
	return b[:rv.innerStart], objects, b[rv.innerEnd:], true
}

// xmlText unescapes the few entities Go's encoder writes.
func xmlText(b []byte) string {
	r := strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&", "&#34;", `"`, "&#39;", "'", "&#xA;", "\n", "&#x9;", "\t", "&#xD;", "\r")
	return r.Replace(string(b))
}
