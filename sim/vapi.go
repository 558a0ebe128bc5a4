// The vAPI REST endpoint (/rest/com/vmware/cis/...): vSphere tags and categories, served by
// govmomi's vapi/simulator package, made to behave like vCenter where it does not:
//
//   - a session needs the same user name and password as the SOAP login (vcsim's vAPI
//     accepts any non-empty pair; vCenter answers 401);
//   - -vapi=false answers 404 on /rest, like a vCenter or ESXi without the endpoint;
//   - answers carry Content-Type application/json, as vCenter's do;
//   - -tags seeds a few categories and tags on VMs, hosts, clusters and datastores.
//
// See docs/simulator.md ("vAPI tagging").
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"

	_ "github.com/vmware/govmomi/vapi/simulator" // registers the /rest endpoints
)

const vapiSessionPath = "/rest/com/vmware/cis/session"

// vapiMiddleware enforces the login credentials on vAPI session creation and hides the
// endpoint when it is switched off.
func (s *sim) vapiMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/rest/") && r.URL.Path != "/rest" {
			next.ServeHTTP(w, r)
			return
		}
		if !s.cfg.vapi {
			http.NotFound(w, r)
			return
		}
		if r.Method == http.MethodPost && r.URL.Path == vapiSessionPath && r.URL.Query().Get("~action") == "" {
			u, p, ok := r.BasicAuth()
			if !ok || !vapiLoginOK(s.cfg, u, p) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"type":"com.vmware.vapi.std.errors.unauthenticated","value":{"messages":[]}}`))
				return
			}
		}
		w.Header().Set("Content-Type", "application/json") // vcsim leaves it to sniffing
		next.ServeHTTP(w, r)
	})
}

// vapiClient calls the in-process vAPI handler (no network, no TLS) to seed tags.
type vapiClient struct {
	h       http.Handler
	session string
}

func (c *vapiClient) call(method, path string, body interface{}) (json.RawMessage, error) {
	var buf bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&buf).Encode(body); err != nil {
			return nil, err
		}
	}
	req := httptest.NewRequest(method, path, &buf)
	req.Header.Set("Content-Type", "application/json")
	if c.session != "" {
		req.Header.Set("vmware-api-session-id", c.session)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("%s %s: HTTP %d %s", method, path, rec.Code, rec.Body.String())
	}
	var out struct {
		Value json.RawMessage `json:"value"`
	}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			return nil, err
		}
	}
	return out.Value, nil
}

func (c *vapiClient) create(kind string, spec map[string]interface{}) (string, error) {
	raw, err := c.call(http.MethodPost, "/rest/com/vmware/cis/tagging/"+kind,
		map[string]interface{}{"create_spec": spec})
	if err != nil {
		return "", err
	}
	var id string
	err = json.Unmarshal(raw, &id)
	return id, err
}

func (c *vapiClient) attach(tagID string, refs []types.ManagedObjectReference) error {
	if len(refs) == 0 {
		return nil
	}
	objs := make([]map[string]string, 0, len(refs))
	for _, r := range refs {
		objs = append(objs, map[string]string{"type": r.Type, "id": r.Value})
	}
	_, err := c.call(http.MethodPost,
		"/rest/com/vmware/cis/tagging/tag-association/id:"+tagID+"?~action=attach-tag-to-multiple-objects",
		map[string]interface{}{"object_ids": objs})
	return err
}

// seedTags creates the demo categories and tags through the vAPI handler itself:
//
//	Environment (VMs, one per VM): production on even VMs, test on odd ones
//	Rack (hosts): rack-1 / rack-2 alternating
//	Tier (clusters, datastores): gold on every cluster and datastore
func (s *sim) seedTags(mux http.Handler) error {
	c := &vapiClient{h: mux}
	req := httptest.NewRequest(http.MethodPost, vapiSessionPath, nil)
	req.SetBasicAuth(s.cfg.username, s.cfg.password)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	var login struct {
		Value string `json:"value"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &login) != nil {
		return fmt.Errorf("vAPI login: HTTP %d", rec.Code)
	}
	c.session = login.Value

	category := func(name, card string, types ...string) (string, error) {
		return c.create("category", map[string]interface{}{
			"name": name, "description": name, "cardinality": card, "associable_types": types,
		})
	}
	tag := func(cat, name string) (string, error) {
		return c.create("tag", map[string]interface{}{"name": name, "description": name, "category_id": cat})
	}
	env, err := category("Environment", "SINGLE", "VirtualMachine")
	if err != nil {
		return err
	}
	rack, err := category("Rack", "SINGLE", "HostSystem")
	if err != nil {
		return err
	}
	tier, err := category("Tier", "MULTIPLE", "ClusterComputeResource", "Datastore")
	if err != nil {
		return err
	}
	ids := map[string]string{}
	for _, t := range []struct{ cat, name string }{
		{env, "production"}, {env, "test"}, {rack, "rack-1"}, {rack, "rack-2"}, {tier, "gold"},
	} {
		if ids[t.name], err = tag(t.cat, t.name); err != nil {
			return err
		}
	}

	s.mu.Lock()
	var prod, test, rack1, rack2, gold []types.ManagedObjectReference
	for i, vm := range s.vmList {
		if i%2 == 0 {
			prod = append(prod, vm.ref)
		} else {
			test = append(test, vm.ref)
		}
	}
	for i, h := range s.hosts {
		if i%2 == 0 {
			rack1 = append(rack1, h.ref)
		} else {
			rack2 = append(rack2, h.ref)
		}
	}
	for _, cl := range s.clusters {
		gold = append(gold, cl.ref)
	}
	s.mu.Unlock()
	for _, obj := range simulator.Map.All("Datastore") {
		gold = append(gold, obj.(*simulator.Datastore).Self)
	}
	for name, refs := range map[string][]types.ManagedObjectReference{
		"production": prod, "test": test, "rack-1": rack1, "rack-2": rack2, "gold": gold,
	} {
		if err := c.attach(ids[name], refs); err != nil {
			return err
		}
	}
	_, _ = c.call(http.MethodDelete, vapiSessionPath, nil)
	return nil
}
