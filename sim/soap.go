package main

import (
	"bytes"
	stdxml "encoding/xml"
	"fmt"
	"io/ioutil"
	"net/http"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// readOnlyMethods never change inventory state: they take the fast path (no decoding, no
// reconcile) unless a fault is injected for them.
var readOnlyMethods = map[string]bool{}

func init() {
	for _, m := range strings.Fields(`RetrieveServiceContent RetrieveProperties RetrievePropertiesEx
		ContinueRetrievePropertiesEx CancelRetrievePropertiesEx WaitForUpdates WaitForUpdatesEx
		CheckForUpdates CancelWaitForUpdates CreateFilter DestroyPropertyFilter
		CreatePropertyCollector DestroyPropertyCollector CreateContainerView CreateListView
		CreateListViewFromView CreateInventoryView DestroyView Login Logout LoginByToken
		SessionIsActive CurrentTime QueryPerf QueryPerfCounter QueryPerfCounterByLevel
		QueryAvailablePerfMetric QueryPerfProviderSummary QueryPerfComposite QueryEvents
		CreateCollectorForEvents CreateCollectorForTasks ReadNextEvents ReadPreviousEvents
		ReadNextTasks ReadPreviousTasks ResetCollector RewindCollector DestroyCollector
		SetCollectorPageSize FindByUuid FindAllByUuid FindByIp FindAllByIp FindByDnsName
		FindAllByDnsName FindByInventoryPath FindChild FindByDatastorePath RetrieveUserGroups
		HasPrivilegeOnEntities HasPrivilegeOnEntity FetchUserPrivilegeOnEntities QueryOptions
		RetrieveAllPermissions RetrieveEntityPermissions RetrieveRolePermissions QueryDescriptions
		Fetch ValidateMigration QueryConfigOption QueryConfigOptionEx QueryConfigTarget
		RetrieveDasAdvancedRuntimeInfo`) {
		readOnlyMethods[m] = true
	}
}

// sessionless methods work without a session, so faults can be injected into them (a
// refused Login, for instance) for clients that are not logged in yet.
var sessionless = map[string]bool{
	"RetrieveServiceContent": true, "Login": true, "LoginByToken": true,
	"LoginExtensionByCertificate": true, "CloneSession": true, "RetrieveProperties": true,
	"RetrievePropertiesEx": true, "Fetch": true,
}

// strictMethods are the calls that -strict checks against host state.
var strictMethods = map[string]bool{
	"PowerOnVM_Task": true, "ResetVM_Task": true, "PowerOffVM_Task": true, "SuspendVM_Task": true,
	"StandbyGuest": true, "ShutdownGuest": true, "RebootGuest": true,
	"RelocateVM_Task": true, "MigrateVM_Task": true, "RegisterVM_Task": true,
}

// inventoryTypes: a mutating call on one of these may change what the reconciler derives.
var inventoryTypes = map[string]bool{
	"VirtualMachine": true, "HostSystem": true, "ClusterComputeResource": true,
	"ComputeResource": true, "Folder": true, "Datacenter": true, "ResourcePool": true,
	"VirtualApp": true,
}

// readSOAPCall is the opening of every middleware in front of vcsim's /sdk handler: what is
// not a POST to /sdk goes on to next untouched; a SOAP call's body is read, put back for
// next, and returned with its method name. handled is true when the request has already
// been answered (passed on, or a 400 for a body that could not be read).
func readSOAPCall(w http.ResponseWriter, r *http.Request, next http.Handler) (body []byte, name string, handled bool) {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/sdk") {
		next.ServeHTTP(w, r)
		return nil, "", true
	}
	body, err := ioutil.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		http.Error(w, "reading request body", http.StatusBadRequest)
		return nil, "", true
	}
	r.Body = ioutil.NopCloser(bytes.NewReader(body))
	return body, soapMethodName(body), false
}

// soapMethodName returns the local name of the first element inside soapenv:Body.
func soapMethodName(body []byte) string {
	d := stdxml.NewDecoder(bytes.NewReader(body))
	inBody := false
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if se, ok := tok.(stdxml.StartElement); ok {
			if inBody {
				return se.Name.Local
			}
			if se.Name.Local == "Body" {
				inBody = true
			}
		}
	}
}

func decodeSOAP(body []byte) (m *simulator.Method, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("decoding request: %v", r)
		}
	}()
	return simulator.UnmarshalBody(vimTypes, body)
}

type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newBufferedResponse() *bufferedResponse { return &bufferedResponse{header: http.Header{}} }

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedResponse) flush(w http.ResponseWriter, body []byte) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(body)
}

// sdkMiddleware sits in front of vcsim's /sdk handler: it answers injected faults and
// strict-mode refusals, implements MigrateVM_Task (as RelocateVM_Task, which vcsim has),
// and runs the guest-agent reconciler right after every inventory-changing call so that
// the caller sees derived state (heartbeats, connection state) as soon as its call returns.
func (s *sim) sdkMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, name, handled := readSOAPCall(w, r, next)
		if handled {
			return
		}
		if accounts.serve(w, r, body, name, next) { // users and roles (accounts.go)
			return
		}
		injected := name != "" && s.faults.hasMethod(name)
		strict := s.strict.Load() && strictMethods[name]
		if name == "QueryPerf" && !injected { // sim/guest_io.go
			s.serveQueryPerf(w, r, next)
			return
		}
		if name == "" || (readOnlyMethods[name] && !injected) {
			next.ServeHTTP(w, r)
			return
		}
		m, err := decodeSOAP(body)
		if err != nil {
			next.ServeHTTP(w, r) // let vcsim produce the error
			return
		}
		if c, cerr := r.Cookie(soap.SessionCookieName); (cerr != nil || c.Value == "") && !sessionless[name] {
			next.ServeHTTP(w, r) // not logged in: vcsim answers NotAuthenticated
			return
		}

		if injected {
			if rule := s.faults.take(name, s.objectsOf(m)); rule != nil {
				if rule.Mode == "drop-session" {
					r = drops.drop(r) // served below as a call without a session
				} else {
					msg := faultMessage(rule.Fault, rule.Message)
					f := buildFault(rule.Fault, m.This, s.hostForFault(m))
					if rule.Mode == "task" {
						writeFailedTask(w, name, m.This, msg, f)
					} else {
						writeSOAPFault(w, msg, f)
					}
					return
				}
			}
		}
		if strict {
			if f := s.strictCheck(m); f != nil {
				kind := fmt.Sprintf("%T", f)
				msg := faultMessage(kind[strings.LastIndex(kind, ".")+1:], "")
				if strings.HasSuffix(name, "_Task") {
					writeFailedTask(w, name, m.This, msg, f)
				} else {
					writeSOAPFault(w, msg, f)
				}
				return
			}
		}

		if m.Name == "UnregisterVM" {
			noteUnregister(m.This, s.saveHardware(m.This)) // duplicates.go
			s.forgetVM(m.This)
			s.prepareUnregister(m.This)
		}
		if f := s.haBeforeReconfigure(m); f != nil { // sim/ha_config.go
			writeFailedTask(w, name, m.This, faultMessage("InvalidArgument", ""), f)
			return
		}
		rewrite := false
		if req, ok := m.Body.(*types.MigrateVM_Task); ok {
			body = migrateAsRelocate(req)
			r = r.Clone(r.Context())
			r.Body = ioutil.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			rewrite = true
		}
		if vmRef, ok := snapshotVM(m); ok { // sim/snapshots.go: its delta disks go with it
			saved := savedLayout(vmRef)
			rec := newBufferedResponse()
			next.ServeHTTP(rec, r)
			s.mu.Lock()
			s.snapshotFilesAfter(vmRef, nil, saved)
			s.mu.Unlock()
			taskOnVM(rec.body.Bytes(), vmRef)
			rec.flush(w, rec.body.Bytes())
			return
		}
		if !inventoryTypes[m.This.Type] && !rewrite && m.Name != "SetField" {
			next.ServeHTTP(w, r)
			return
		}
		var saved *types.VirtualMachineFileLayoutEx
		if m.This.Type == "VirtualMachine" && refreshesStorage[m.Name] {
			saved = savedLayout(m.This) // sim/snapshots.go
		}
		rec := newBufferedResponse()
		next.ServeHTTP(rec, r)
		s.afterCall(m, saved)
		out := rec.body.Bytes()
		if rewrite {
			out = bytes.ReplaceAll(out, []byte("RelocateVM_TaskResponse"), []byte("MigrateVM_TaskResponse"))
		}
		rec.flush(w, out)
	})
}

// prepareUnregister lets UnregisterVM remove a VM whose host is not connected, as vCenter
// does: vcsim refuses any VM it still believes powered on, so the VM (dead with its host)
// is marked powered off first.
func (s *sim) prepareUnregister(r types.ManagedObjectReference) {
	h := vmHostRef(r)
	if hs, ok := hostState(h); !ok || hs.connected() {
		return
	}
	vm, ok := simulator.Map.Get(r).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	simulator.Map.WithLock(vm, func() {
		if vm.Runtime.PowerState == vmPoweredOff {
			return
		}
		mapUpdate(vm, []types.PropertyChange{
			{Name: "runtime.powerState", Val: vmPoweredOff},
			{Name: "summary.runtime.powerState", Val: vmPoweredOff},
			{Name: "summary.runtime.bootTime", Val: nil},
			{Name: "runtime.bootTime", Val: nil},
		})
	})
}

// announceMaintenance tells property collectors about runtime.inMaintenanceMode, which
// vcsim's Enter/ExitMaintenanceMode_Task set without an update.
func (s *sim) announceMaintenance(r types.ManagedObjectReference) {
	h, ok := simulator.Map.Get(r).(*simulator.HostSystem)
	if !ok {
		return
	}
	simulator.Map.WithLock(h, func() {
		v := h.Runtime.InMaintenanceMode
		mapUpdate(h, []types.PropertyChange{
			{Name: "runtime.inMaintenanceMode", Val: v},
			{Name: "summary.runtime.inMaintenanceMode", Val: v},
		})
	})
}

func (s *sim) afterCall(m *simulator.Method, saved *types.VirtualMachineFileLayoutEx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch req := m.Body.(type) {
	case *types.EnterMaintenanceMode_Task, *types.ExitMaintenanceMode_Task:
		s.announceMaintenance(m.This)
	case *types.SetCustomValue:
		s.refreshCustomValues(req.This)
	case *types.SetField:
		s.refreshCustomValues(req.Entity)
		s.reconcileAllLocked()
		return
	case *types.ReconfigureComputeResource_Task:
		defer s.haAfterReconfigure(req.This) // sim/ha_config.go
	}
	if m.This.Type == "VirtualMachine" && m.Name != "CloneVM_Task" {
		created, _ := m.Body.(*types.CreateSnapshot_Task)
		s.snapshotFilesAfter(m.This, created, saved) // sim/snapshots.go
		s.reconcileOneLocked(m.This)
		s.haDeriveOneLocked(m.This)
		return
	}
	s.reconcileAllLocked()
	switch m.Name {
	case "RegisterVM_Task", "CreateVM_Task", "CloneVM_Task", "RelocateVM_Task", "MigrateVM_Task":
		s.haInitLocked() // new VMs, or VMs moved between clusters
	}
}

func writeRef(b *bytes.Buffer, elem string, r types.ManagedObjectReference) {
	fmt.Fprintf(b, `<%s type="`, elem)
	_ = xml.EscapeText(b, []byte(r.Type))
	b.WriteString(`">`)
	_ = xml.EscapeText(b, []byte(r.Value))
	fmt.Fprintf(b, `</%s>`, elem)
}

// migrateAsRelocate turns MigrateVM_Task (which vcsim lacks) into the equivalent
// RelocateVM_Task request; vcsim then authenticates and runs it as usual.
func migrateAsRelocate(req *types.MigrateVM_Task) []byte {
	var b bytes.Buffer
	b.WriteString(envelopeStart)
	b.WriteString(`<RelocateVM_Task xmlns="urn:vim25">`)
	writeRef(&b, "_this", req.This)
	b.WriteString(`<spec>`)
	if req.Pool != nil {
		writeRef(&b, "pool", *req.Pool)
	}
	if req.Host != nil {
		writeRef(&b, "host", *req.Host)
	}
	b.WriteString(`</spec>`)
	if req.Priority != "" {
		b.WriteString(`<priority>`)
		_ = xml.EscapeText(&b, []byte(req.Priority))
		b.WriteString(`</priority>`)
	}
	b.WriteString(`</RelocateVM_Task>`)
	b.WriteString(envelopeEnd)
	return b.Bytes()
}

// ---- helpers reading live state ----------------------------------------------------------

func vmHostRef(r types.ManagedObjectReference) *types.ManagedObjectReference {
	vm, ok := simulator.Map.Get(r).(*simulator.VirtualMachine)
	if !ok {
		return nil
	}
	var h *types.ManagedObjectReference
	simulator.Map.WithLock(vm, func() {
		if vm.Runtime.Host != nil {
			c := *vm.Runtime.Host
			h = &c
		}
	})
	return h
}

func vmToolsRunning(r types.ManagedObjectReference) bool {
	vm, ok := simulator.Map.Get(r).(*simulator.VirtualMachine)
	if !ok {
		return false
	}
	running := false
	simulator.Map.WithLock(vm, func() {
		running = vm.Guest != nil && vm.Guest.ToolsRunningStatus != toolsNotRunning && vm.Guest.ToolsRunningStatus != ""
	})
	return running
}

func hostState(r *types.ManagedObjectReference) (hostSnap, bool) {
	if r == nil {
		return hostSnap{}, false
	}
	h, ok := simulator.Map.Get(*r).(*simulator.HostSystem)
	if !ok {
		return hostSnap{}, false
	}
	var hs hostSnap
	simulator.Map.WithLock(h, func() { hs = snapshotHostUnlocked(h) })
	return hs, true
}

// targetHost is the host a call would place or run the VM on, if the request names one.
func targetHost(m *simulator.Method) *types.ManagedObjectReference {
	switch req := m.Body.(type) {
	case *types.PowerOnVM_Task:
		return req.Host
	case *types.RelocateVM_Task:
		return req.Spec.Host
	case *types.MigrateVM_Task:
		return req.Host
	case *types.RegisterVM_Task:
		return req.Host
	case *types.CreateVM_Task:
		return req.Host
	case *types.CloneVM_Task:
		return req.Spec.Location.Host
	}
	return nil
}

// objectsOf lists what an injected fault's "object" may match: the call's _this, the VM's
// current host and the target host of the call.
func (s *sim) objectsOf(m *simulator.Method) []types.ManagedObjectReference {
	objs := []types.ManagedObjectReference{m.This}
	objs = append(objs, retrievedObjects(m)...)
	if m.This.Type == "VirtualMachine" {
		if h := vmHostRef(m.This); h != nil {
			objs = append(objs, *h)
		}
	}
	if h := targetHost(m); h != nil {
		objs = append(objs, *h)
	}
	return objs
}

func (s *sim) hostForFault(m *simulator.Method) *types.ManagedObjectReference {
	if h := targetHost(m); h != nil {
		return h
	}
	switch m.This.Type {
	case "VirtualMachine":
		return vmHostRef(m.This)
	case "HostSystem":
		h := m.This
		return &h
	}
	return nil
}

// strictCheck returns the fault a real vCenter raises for this call, or nil.
func (s *sim) strictCheck(m *simulator.Method) types.BaseMethodFault {
	runHost := func(h *types.ManagedObjectReference) types.BaseMethodFault {
		hs, ok := hostState(h)
		if !ok {
			return nil
		}
		if !hs.connected() {
			return &types.HostNotConnected{}
		}
		if hs.maintenance || hs.power != types.HostSystemPowerStatePoweredOn {
			return &types.InvalidHostState{Host: h}
		}
		return nil
	}
	targetOK := func(h *types.ManagedObjectReference) types.BaseMethodFault {
		hs, ok := hostState(h)
		if !ok {
			return nil
		}
		if !hs.connected() || hs.maintenance || hs.power != types.HostSystemPowerStatePoweredOn {
			return &types.InvalidHostState{Host: h}
		}
		return nil
	}
	// vCenter cannot move a VM off a host it cannot reach (one re-registers it instead);
	// off unless -strict-source, as the simulator's stand-in for an HA restart is a
	// relocation off the failed host.
	sourceOK := func() types.BaseMethodFault {
		if !s.strictSource.Load() {
			return nil
		}
		src := vmHostRef(m.This)
		if hs, ok := hostState(src); ok && !hs.connected() {
			return &types.InvalidHostState{Host: src}
		}
		return nil
	}
	connected := func() types.BaseMethodFault {
		if hs, ok := hostState(vmHostRef(m.This)); ok && !hs.connected() {
			return &types.HostNotConnected{}
		}
		return nil
	}
	switch req := m.Body.(type) {
	case *types.PowerOnVM_Task:
		h := req.Host
		if h == nil {
			h = vmHostRef(m.This)
		}
		if f := runHost(h); f != nil {
			return f
		}
		return powerOnCheck(m.This)
	case *types.ResetVM_Task, *types.PowerOffVM_Task, *types.SuspendVM_Task, *types.StandbyGuest:
		return connected()
	case *types.ShutdownGuest, *types.RebootGuest:
		if f := connected(); f != nil {
			return f
		}
		if !vmToolsRunning(m.This) {
			return &types.ToolsUnavailable{}
		}
	case *types.RelocateVM_Task:
		if f := sourceOK(); f != nil {
			return f
		}
		if req.Spec.Host != nil {
			return targetOK(req.Spec.Host)
		}
	case *types.MigrateVM_Task:
		if f := sourceOK(); f != nil {
			return f
		}
		if req.Host != nil {
			return targetOK(req.Host)
		}
	case *types.RegisterVM_Task:
		if req.Host != nil {
			if f := targetOK(req.Host); f != nil {
				return f
			}
		}
		return registerCheck(req)
	}
	return nil
}
