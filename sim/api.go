package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/ioutil"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// ---- JSON shapes -----------------------------------------------------------------------

type hostJSON struct {
	Name              string   `json:"name"`
	Moid              string   `json:"moid"`
	Cluster           *string  `json:"cluster"`
	Datacenter        string   `json:"datacenter"`
	FaultDomain       *string  `json:"faultDomain"`
	ConnectionState   string   `json:"connectionState"`
	PowerState        string   `json:"powerState"`
	InMaintenanceMode bool     `json:"inMaintenanceMode"`
	InQuarantineMode  bool     `json:"inQuarantineMode"`
	OverallStatus     string   `json:"overallStatus"`
	DasHostState      *string  `json:"dasHostState"`
	Vms               []string `json:"vms"`
}

type vmJSON struct {
	Name                 string            `json:"name"`
	Moid                 string            `json:"moid"`
	Host                 *string           `json:"host"`
	Cluster              *string           `json:"cluster"`
	Datacenter           *string           `json:"datacenter"`
	PowerState           string            `json:"powerState"`
	ConnectionState      string            `json:"connectionState"`
	GuestHeartbeatStatus string            `json:"guestHeartbeatStatus"`
	ToolsRunningStatus   string            `json:"toolsRunningStatus"`
	AppHeartbeatStatus   string            `json:"appHeartbeatStatus"`
	RestartPriority      *string           `json:"restartPriority"`
	BootTime             *string           `json:"bootTime"`
	InjectedFaults       map[string]string `json:"injectedFaults"`
}

type clusterJSON struct {
	Name       string   `json:"name"`
	Moid       string   `json:"moid"`
	Datacenter string   `json:"datacenter"`
	Master     *string  `json:"master"`
	Hosts      []string `json:"hosts"`
}

type inventoryJSON struct {
	Hosts    []hostJSON    `json:"hosts"`
	Vms      []vmJSON      `json:"vms"`
	Clusters []clusterJSON `json:"clusters"`
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// ---- snapshots -------------------------------------------------------------------------

func (s *sim) hostJSON(h *hostInfo, hs hostSnap, vms []string) hostJSON {
	j := hostJSON{
		Name:              h.name,
		Moid:              h.ref.Value,
		Datacenter:        h.dc.name,
		FaultDomain:       strPtr(h.faultDomain),
		ConnectionState:   string(hs.conn),
		PowerState:        string(hs.power),
		InMaintenanceMode: hs.maintenance,
		InQuarantineMode:  hs.quarantine,
		OverallStatus:     string(hs.overall),
		DasHostState:      strPtr(hs.das),
		Vms:               vms,
	}
	if h.cluster != nil {
		j.Cluster = &h.cluster.name
	}
	if j.Vms == nil {
		j.Vms = []string{}
	}
	return j
}

func (s *sim) vmJSON(t *vmTrack) (vmJSON, types.ManagedObjectReference) {
	j := vmJSON{Name: t.name, Moid: t.ref.Value}
	var hostRef types.ManagedObjectReference
	simulator.Map.WithLock(t.obj, func() {
		vm := t.obj
		j.Name = vm.Name
		j.RestartPriority = strPtr(restartPriorityOf(vm, s.restartKey))
		j.PowerState = string(vm.Runtime.PowerState)
		j.ConnectionState = string(vm.Runtime.ConnectionState)
		j.GuestHeartbeatStatus = string(vm.GuestHeartbeatStatus)
		if vm.Guest != nil {
			j.ToolsRunningStatus = vm.Guest.ToolsRunningStatus
			j.AppHeartbeatStatus = vm.Guest.AppHeartbeatStatus
		}
		if vm.Runtime.Host != nil {
			hostRef = *vm.Runtime.Host
		}
		if bt := vm.Runtime.BootTime; bt != nil {
			v := bt.UTC().Format(time.RFC3339Nano)
			j.BootTime = &v
		}
	})
	if h := s.hostByRef[hostRef]; h != nil {
		j.Host = &h.name
		j.Datacenter = &h.dc.name
		if h.cluster != nil {
			j.Cluster = &h.cluster.name
		}
	}
	j.InjectedFaults = map[string]string{}
	if t.ov.guestHeartbeat != "" {
		j.InjectedFaults["guestHeartbeatStatus"] = string(t.ov.guestHeartbeat)
	}
	if t.ov.toolsRunning != "" {
		j.InjectedFaults["toolsRunningStatus"] = t.ov.toolsRunning
	}
	if t.ov.appHeartbeat != "" {
		j.InjectedFaults["appHeartbeatStatus"] = t.ov.appHeartbeat
	}
	if bootHangOf(t) {
		j.InjectedFaults["hangOnBoot"] = "true"
	}
	return j, hostRef
}

// inventoryLocked builds the whole inventory. Caller holds s.mu.
func (s *sim) inventoryLocked() inventoryJSON {
	inv := inventoryJSON{Hosts: []hostJSON{}, Vms: []vmJSON{}, Clusters: []clusterJSON{}}
	byHost := map[types.ManagedObjectReference][]string{}
	for _, t := range s.vmList {
		j, hr := s.vmJSON(t)
		inv.Vms = append(inv.Vms, j)
		byHost[hr] = append(byHost[hr], j.Name)
	}
	snaps := s.snapshotHosts()
	for _, h := range s.hosts {
		inv.Hosts = append(inv.Hosts, s.hostJSON(h, snaps[h.ref], byHost[h.ref]))
	}
	for _, c := range s.clusters {
		cj := clusterJSON{Name: c.name, Moid: c.ref.Value, Datacenter: c.dc.name, Hosts: []string{}}
		for _, h := range c.hosts {
			cj.Hosts = append(cj.Hosts, h.name)
		}
		if m := masterOf(c, snaps, nil); m != nil {
			cj.Master = &m.name
		}
		inv.Clusters = append(inv.Clusters, cj)
	}
	return inv
}

func (s *sim) hostEntryLocked(h *hostInfo) hostJSON {
	var vms []string
	for _, t := range s.vmList {
		if t.host == h.ref {
			vms = append(vms, t.name)
		}
	}
	return s.hostJSON(h, snapshotHost(h), vms)
}

// ---- HTTP plumbing ---------------------------------------------------------------------

type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errf(status int, format string, args ...interface{}) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v interface{}) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"encoding response"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeErr(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, map[string]string{"error": e.msg})
}

// readObject decodes a JSON object body into raw fields. An empty body is an empty object.
func readObject(r *http.Request) (map[string]json.RawMessage, *apiError) {
	data, err := ioutil.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, errf(http.StatusBadRequest, "reading body: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return nil, errf(http.StatusBadRequest, "body must be a JSON object")
	}
	return obj, nil
}

// serveState is the opening the fault-API state endpoints share (datastores, datastore
// perf, guest, sensors): GET answers get(), POST hands the body's JSON object to set and
// answers what set returns, any other method is a 405. One place keeps their methods,
// status codes and error messages the same. Callers look the target up first, so an
// unknown one is a 404 whatever the method.
func serveState(r *http.Request, get func() interface{},
	set func(body map[string]json.RawMessage) (interface{}, *apiError)) (int, interface{}, *apiError) {
	switch r.Method {
	case http.MethodGet:
		return http.StatusOK, get(), nil
	case http.MethodPost:
	default:
		return 0, nil, methodNotAllowed(r, "GET", "POST")
	}
	body, aerr := readObject(r)
	if aerr != nil {
		return 0, nil, aerr
	}
	out, aerr := set(body)
	if aerr != nil {
		return 0, nil, aerr
	}
	return http.StatusOK, out, nil
}

// withTarget is the opening of the POST endpoints on one host or VM: the body must be a
// JSON object (a 400 before anything is looked up), then, with s.mu held, the target must
// exist (a 404), and do applies the body to it.
func withTarget[T any](s *sim, r *http.Request, name string, lookup func(string) (T, *apiError),
	do func(T, map[string]json.RawMessage) (int, interface{}, *apiError)) (int, interface{}, *apiError) {
	body, err := readObject(r)
	if err != nil {
		return 0, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := lookup(name)
	if err != nil {
		return 0, nil, err
	}
	return do(t, body)
}

// onlyEnum reads a body that may hold one key, with one of the allowed values; def when the
// body is empty.
func onlyEnum(body map[string]json.RawMessage, key string, allowed []string, def string) (string, *apiError) {
	v := def
	for _, k := range sortedKeys(body) {
		if k != key {
			return "", unknownKey(k, []string{key})
		}
		var err *apiError
		if v, err = enumValue(k, body[k], allowed); err != nil {
			return "", err
		}
	}
	return v, nil
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func enumValue(key string, raw json.RawMessage, allowed []string) (string, *apiError) {
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", errf(http.StatusBadRequest, "%s: expected a string, one of %s", key, strings.Join(allowed, ", "))
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", errf(http.StatusBadRequest, "%s: invalid value %q (allowed: %s)", key, v, strings.Join(allowed, ", "))
}

func boolValue(key string, raw json.RawMessage) (bool, *apiError) {
	var v bool
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, errf(http.StatusBadRequest, "%s: expected true or false", key)
	}
	return v, nil
}

func unknownKey(key string, allowed []string) *apiError {
	return errf(http.StatusBadRequest, "unknown key %q (allowed: %s)", key, strings.Join(allowed, ", "))
}

var (
	hostConnectionStates = []string{"connected", "disconnected", "notResponding"}
	hostPowerStates      = []string{"poweredOn", "poweredOff", "standBy", "unknown"}
	entityStatuses       = []string{"green", "yellow", "red", "gray"}
	dasStates            = []string{
		"uninitialized", "election", "master", "connectedToMaster", "networkPartitionedFromMaster",
		"networkIsolated", "hostDown", "initializationError", "uninitializationError", "fdmUnreachable",
	}
	failDasStates      = []string{"hostDown", "networkIsolated", "networkPartitionedFromMaster"}
	vmPowerStates      = []string{"poweredOn", "poweredOff", "suspended"}
	toolsRunningStates = []string{"guestToolsRunning", "guestToolsNotRunning", "guestToolsExecutingScripts"}
	appHeartbeatStates = []string{"appStatusGreen", "appStatusRed", "appStatusGray"}

	hostKeys = []string{"connectionState", "powerState", "inMaintenanceMode", "inQuarantineMode", "overallStatus", "dasHostState"}
	vmKeys   = []string{"powerState", "guestHeartbeatStatus", "toolsRunningStatus", "appHeartbeatStatus", "hangOnBoot"}
)

// splitPath splits an escaped URL path into unescaped segments.
func splitPath(r *http.Request) ([]string, *apiError) {
	raw := strings.Trim(r.URL.EscapedPath(), "/")
	if raw == "" {
		return nil, nil
	}
	parts := strings.Split(raw, "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, errf(http.StatusBadRequest, "bad path segment %q", p)
		}
		parts[i] = u
	}
	return parts, nil
}

func methodNotAllowed(r *http.Request, allowed ...string) *apiError {
	return errf(http.StatusMethodNotAllowed, "method %s not allowed here (allowed: %s)", r.Method, strings.Join(allowed, ", "))
}

func (s *sim) apiHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, body, err := s.route(r)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, status, body)
	})
}

func (s *sim) route(r *http.Request) (int, interface{}, *apiError) {
	parts, err := splitPath(r)
	if err != nil {
		return 0, nil, err
	}
	n := len(parts)
	switch {
	case n == 1 && parts[0] == "healthz":
		if r.Method != http.MethodGet {
			return 0, nil, methodNotAllowed(r, "GET")
		}
		return http.StatusOK, map[string]string{"status": "ok"}, nil
	case n < 3 || parts[0] != "api" || parts[1] != "v1":
		return 0, nil, errf(http.StatusNotFound, "no such endpoint: %s", r.URL.Path)
	}
	parts = parts[2:]
	n = len(parts)
	switch parts[0] {
	case "inventory":
		if n != 1 {
			break
		}
		if r.Method != http.MethodGet {
			return 0, nil, methodNotAllowed(r, "GET")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return http.StatusOK, s.inventoryLocked(), nil
	case "hosts":
		if n == 2 {
			switch r.Method {
			case http.MethodGet:
				return s.getHost(parts[1])
			case http.MethodPost:
				return s.postHost(r, parts[1])
			}
			return 0, nil, methodNotAllowed(r, "GET", "POST")
		}
		if n == 3 && parts[2] == "locks" {
			if r.Method != http.MethodPost {
				return 0, nil, methodNotAllowed(r, "POST")
			}
			return s.postLocks(r, parts[1])
		}
		if n == 3 && parts[2] == "mounts" {
			if r.Method != http.MethodPost {
				return 0, nil, methodNotAllowed(r, "POST")
			}
			return s.postMounts(r, parts[1])
		}
		if n == 3 && (parts[2] == "fail" || parts[2] == "recover") {
			if r.Method != http.MethodPost {
				return 0, nil, methodNotAllowed(r, "POST")
			}
			if parts[2] == "fail" {
				return s.postFail(r, parts[1])
			}
			return s.postRecover(r, parts[1])
		}
	case "vms":
		if n == 2 {
			switch r.Method {
			case http.MethodGet:
				return s.getVM(parts[1])
			case http.MethodPost:
				return s.postVM(r, parts[1])
			}
			return 0, nil, methodNotAllowed(r, "GET", "POST")
		}
	case "faults":
		if n == 1 {
			switch r.Method {
			case http.MethodGet:
				return http.StatusOK, map[string]interface{}{"faults": s.faults.list()}, nil
			case http.MethodPost:
				return s.postFault(r)
			case http.MethodDelete:
				return http.StatusOK, map[string]int{"cleared": s.faults.clear()}, nil
			}
			return 0, nil, methodNotAllowed(r, "GET", "POST", "DELETE")
		}
	case "alarms":
		return s.routeAlarms(r, parts[1:]) // sim/alarms.go
	case "datastores":
		return s.routeDatastores(r, parts[1:]) // sim/datastores.go
	case "sensors":
		return s.routeSensors(r, parts[1:]) // sim/sensors.go
	case "guest":
		return s.routeGuest(r, parts[1:]) // sim/guest.go
	case "config":
		if n == 1 {
			switch r.Method {
			case http.MethodGet:
				return http.StatusOK, s.configJSON(), nil
			case http.MethodPost:
				return s.postConfig(r)
			}
			return 0, nil, methodNotAllowed(r, "GET", "POST")
		}
	}
	if status, body, err, ok := s.routeRaw(r, parts); ok {
		return status, body, err
	}
	if status, body, err, ok := s.routeHA(r, parts); ok { // sim/ha_config.go
		return status, body, err
	}
	return 0, nil, errf(http.StatusNotFound, "no such endpoint: %s", r.URL.Path)
}

// ---- hosts -----------------------------------------------------------------------------

func (s *sim) lookupHost(name string) (*hostInfo, *apiError) {
	h := s.hostByName[name]
	if h == nil {
		return nil, errf(http.StatusNotFound, "unknown host %q", name)
	}
	return h, nil
}

func (s *sim) getHost(name string) (int, interface{}, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.lookupHost(name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, s.hostEntryLocked(h), nil
}

func (s *sim) postHost(r *http.Request, name string) (int, interface{}, *apiError) {
	return withTarget(s, r, name, s.lookupHost, s.setHost)
}

// setHost applies a POST's host properties (checked first, then all at once). Caller holds
// s.mu.
func (s *sim) setHost(h *hostInfo, body map[string]json.RawMessage) (int, interface{}, *apiError) {
	if len(body) == 0 {
		return 0, nil, errf(http.StatusBadRequest, "no properties given (allowed: %s)", strings.Join(hostKeys, ", "))
	}
	var u hostUpdate
	dasWanted := ""
	for _, k := range sortedKeys(body) {
		raw := body[k]
		switch k {
		case "connectionState":
			v, err := enumValue(k, raw, hostConnectionStates)
			if err != nil {
				return 0, nil, err
			}
			c := types.HostSystemConnectionState(v)
			u.conn = &c
		case "powerState":
			v, err := enumValue(k, raw, hostPowerStates)
			if err != nil {
				return 0, nil, err
			}
			p := types.HostSystemPowerState(v)
			u.power = &p
		case "inMaintenanceMode", "inQuarantineMode":
			v, err := boolValue(k, raw)
			if err != nil {
				return 0, nil, err
			}
			if k == "inMaintenanceMode" {
				u.maintenance = &v
			} else {
				u.quarantine = &v
			}
		case "overallStatus":
			v, err := enumValue(k, raw, entityStatuses)
			if err != nil {
				return 0, nil, err
			}
			st := types.ManagedEntityStatus(v)
			u.overall = &st
		case "dasHostState":
			u.setDas = true
			if isNull(raw) {
				continue
			}
			v, err := enumValue(k, raw, dasStates)
			if err != nil {
				return 0, nil, err
			}
			dasWanted = v
		default:
			return 0, nil, unknownKey(k, hostKeys)
		}
	}
	if dasWanted != "" {
		var reporter *hostInfo
		if dasWanted == dasMaster {
			reporter = h
		} else if h.cluster != nil {
			reporter = masterOf(h.cluster, s.snapshotHosts(), h)
		}
		u.das = dasState(dasWanted, reporter)
	}
	s.updateHost(h, u)
	s.reconcileAllLocked()
	return http.StatusOK, s.hostEntryLocked(h), nil
}

func (s *sim) postFail(r *http.Request, name string) (int, interface{}, *apiError) {
	return withTarget(s, r, name, s.lookupHost, func(h *hostInfo, body map[string]json.RawMessage) (int, interface{}, *apiError) {
		das, err := onlyEnum(body, "dasHostState", failDasStates, string(types.ClusterDasFdmAvailabilityStateHostDown))
		if err != nil {
			return 0, nil, err
		}
		s.failHost(h, das)
		return http.StatusOK, s.hostEntryLocked(h), nil
	})
}

func (s *sim) postRecover(r *http.Request, name string) (int, interface{}, *apiError) {
	return withTarget(s, r, name, s.lookupHost, func(h *hostInfo, body map[string]json.RawMessage) (int, interface{}, *apiError) {
		// what the host still has registered (duplicates.go)
		mode, err := onlyEnum(body, "staleVms", staleModes, staleOff)
		if err != nil {
			return 0, nil, err
		}
		releaseLocks(h.ref) // a host back in vCenter's hands: its VMs are known again
		s.recoverHost(h)
		s.returnStale(h, mode)
		return http.StatusOK, s.hostEntryLocked(h), nil
	})
}

// ---- VMs -------------------------------------------------------------------------------

func (s *sim) lookupVM(name string) (*vmTrack, *apiError) {
	if r, ok := s.vmByName[name]; ok {
		if t := s.vms[r]; t != nil {
			return t, nil
		}
	}
	return nil, errf(http.StatusNotFound, "unknown vm %q", name)
}

func (s *sim) getVM(name string) (int, interface{}, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupVM(name)
	if err != nil {
		return 0, nil, err
	}
	j, _ := s.vmJSON(t)
	return http.StatusOK, j, nil
}

func (s *sim) postVM(r *http.Request, name string) (int, interface{}, *apiError) {
	return withTarget(s, r, name, s.lookupVM, func(t *vmTrack, body map[string]json.RawMessage) (int, interface{}, *apiError) {
		return s.setVM(t, name, body)
	})
}

// setVM applies a POST's VM properties (checked first, then all at once). Caller holds
// s.mu.
func (s *sim) setVM(t *vmTrack, name string, body map[string]json.RawMessage) (int, interface{}, *apiError) {
	if len(body) == 0 {
		return 0, nil, errf(http.StatusBadRequest, "no properties given (allowed: %s)", strings.Join(vmKeys, ", "))
	}
	var power string
	// requested guest faults: nil = not in the request, "" = clear
	var hb, tools, app *string
	faulty := []string{}
	for _, k := range sortedKeys(body) {
		raw := body[k]
		var allowed []string
		var healthy string
		var dst **string
		switch k {
		case "hangOnBoot": // sim/boot_hang.go: every later boot of these files hangs
			if err := setBootHang(t, raw); err != nil {
				return 0, nil, err
			}
			continue
		case "powerState":
			v, err := enumValue(k, raw, vmPowerStates)
			if err != nil {
				return 0, nil, err
			}
			power = v
			continue
		case "guestHeartbeatStatus":
			allowed, healthy, dst = entityStatuses, string(statusGreen), &hb
		case "toolsRunningStatus":
			allowed, healthy, dst = toolsRunningStates, toolsRunning, &tools
		case "appHeartbeatStatus":
			allowed, healthy, dst = appHeartbeatStates, appGreen, &app
		default:
			return 0, nil, unknownKey(k, vmKeys)
		}
		v, err := enumValue(k, raw, allowed)
		if err != nil {
			return 0, nil, err
		}
		if v == healthy {
			v = ""
		} else {
			faulty = append(faulty, k)
		}
		*dst = &v
	}

	var current types.VirtualMachinePowerState
	simulator.Map.WithLock(t.obj, func() { current = t.obj.Runtime.PowerState })
	final := current
	if power != "" {
		final = types.VirtualMachinePowerState(power)
	}
	if len(faulty) > 0 && final != vmPoweredOn {
		return 0, nil, errf(http.StatusConflict,
			"vm %q is %s: %s faults need a running guest (power it on first, or in the same request)",
			name, final, strings.Join(faulty, ", "))
	}

	if power != "" && final != current {
		s.setVMPower(t, final)
		s.reconcileOneLocked(t.ref) // a new boot (or no guest) drops old guest faults
	}
	if hb != nil {
		t.ov.guestHeartbeat = types.ManagedEntityStatus(*hb)
	}
	if tools != nil {
		t.ov.toolsRunning = *tools
	}
	if app != nil {
		t.ov.appHeartbeat = *app
	}
	s.reconcileOneLocked(t.ref)
	j, _ := s.vmJSON(t)
	return http.StatusOK, j, nil
}

// setVMPower changes a VM's power state behind vCenter's back (no task, no events).
func (s *sim) setVMPower(t *vmTrack, p types.VirtualMachinePowerState) {
	changes := []types.PropertyChange{
		{Name: "runtime.powerState", Val: p},
		{Name: "summary.runtime.powerState", Val: p},
	}
	switch p {
	case vmPoweredOn:
		changes = append(changes, types.PropertyChange{Name: "summary.runtime.bootTime", Val: time.Now()})
	case vmPoweredOff:
		changes = append(changes, types.PropertyChange{Name: "summary.runtime.bootTime", Val: nil})
	}
	simulator.Map.WithLock(t.obj, func() {
		mapUpdate(t.obj, changes)
	})
}

// ---- config ----------------------------------------------------------------------------

func (s *sim) configJSON() map[string]interface{} {
	return map[string]interface{}{
		"strict":            s.strict.Load(),
		"strictSource":      s.strictSource.Load(),
		"realVCenter":       realVCenter.Load(),
		"reconcileInterval": s.cfg.reconcileInterval.String(),
		"paging":            paging.json(),
		"delivery":          delivery.json(),
	}
}

func (s *sim) postConfig(r *http.Request) (int, interface{}, *apiError) {
	body, err := readObject(r)
	if err != nil {
		return 0, nil, err
	}
	flags := map[string]*atomic.Bool{"strict": &s.strict, "strictSource": &s.strictSource, "realVCenter": &realVCenter, "incrementalDelivery": &delivery.enabled}
	values := map[string]bool{}
	var pagingCfg *pagingConfig
	for _, k := range sortedKeys(body) {
		if k == "paging" {
			c, err := paging.parseConfig(body[k])
			if err != nil {
				return 0, nil, err
			}
			pagingCfg = &c
			continue
		}
		if flags[k] == nil {
			return 0, nil, unknownKey(k, []string{"incrementalDelivery", "paging", "realVCenter", "strict", "strictSource"})
		}
		v, err := boolValue(k, body[k])
		if err != nil {
			return 0, nil, err
		}
		values[k] = v
	}
	for k, v := range values {
		flags[k].Store(v)
	}
	if pagingCfg != nil {
		paging.apply(*pagingCfg)
	}
	return http.StatusOK, s.configJSON(), nil
}
