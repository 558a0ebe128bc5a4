package main

// Real-vCenter mode: properties that vCenter does not announce to property collectors.
//
// The vSphere API reference says VirtualMachineQuickStats and HostListSummaryQuickStats
// "do not support notification, for scalability reasons" (changes in quickStats generate no
// property-collector updates), and that for overallStatus "vSphere Servers might not
// generate property collector update notifications". vcsim announces every Map.Update.
// With -real-vcenter (or POST /api/v1/config {"realVCenter": true}) every change the
// simulator makes to such a path is applied to the object (RetrievePropertiesEx and a fresh
// WaitForUpdatesEx see it) but not announced to WaitForUpdatesEx listeners, as on vCenter.
//
// POST /api/v1/hosts/{name}/raw and /api/v1/vms/{name}/raw set values exactly as given,
// unvalidated and without derived effects: quick stats, and (hosts) an overallStatus or an
// HA state string that no enum lists, for clients that must cope with values from a newer
// vCenter.

import (
	"encoding/json"
	"net/http"
	"path"
	"reflect"
	"strings"
	"sync/atomic"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// realVCenter: set from -real-vcenter and POST /api/v1/config.
var realVCenter atomic.Bool

// silentPath reports whether vCenter would not announce a change of this property path.
func silentPath(name string) bool {
	return name == "overallStatus" || name == "summary.overallStatus" || name == "layoutEx" ||
		name == "summary.quickStats" || strings.HasPrefix(name, "summary.quickStats.")
}

// mapUpdate is simulator.Map.Update that, in real-vCenter mode, applies the silent paths
// without telling property collectors. Callers hold Map.WithLock(obj) as for Map.Update.
func mapUpdate(obj mo.Reference, changes []types.PropertyChange) {
	if !realVCenter.Load() {
		simulator.Map.Update(obj, changes)
		return
	}
	var loud, quiet []types.PropertyChange
	for _, c := range changes {
		if silentPath(c.Name) {
			quiet = append(quiet, c)
		} else {
			loud = append(loud, c)
		}
	}
	if len(quiet) > 0 {
		mo.ApplyPropertyChange(embeddedMO(obj), quiet)
	}
	if len(loud) > 0 {
		simulator.Map.Update(obj, loud)
	}
}

// embeddedMO digs the mo.X struct out of a simulator wrapper (as vcsim's Map.Update does),
// since ApplyPropertyChange indexes fields by the mo type's layout.
func embeddedMO(obj mo.Reference) mo.Reference {
	rval := reflect.ValueOf(obj).Elem()
	for path.Base(rval.Type().PkgPath()) != "mo" {
		if rval.Kind() != reflect.Struct || rval.NumField() == 0 {
			return obj
		}
		rval = rval.Field(0)
	}
	return rval.Addr().Interface().(mo.Reference)
}

var (
	hostRawKeys = []string{"dasHostState", "overallCpuUsage", "overallMemoryUsage", "overallStatus"}
	vmRawKeys   = []string{"guestMemoryUsage", "hostMemoryUsage", "overallCpuDemand", "overallCpuUsage"}
)

func int32Value(key string, raw json.RawMessage) (int32, *apiError) {
	var v int32
	if err := json.Unmarshal(raw, &v); err != nil || v < 0 {
		return 0, errf(http.StatusBadRequest, "%s: expected a non-negative 32-bit integer", key)
	}
	return v, nil
}

func stringValue(key string, raw json.RawMessage) (string, *apiError) {
	var v string
	if err := json.Unmarshal(raw, &v); err != nil || v == "" {
		return "", errf(http.StatusBadRequest, "%s: expected a non-empty string", key)
	}
	return v, nil
}

// rawChanges turns a raw body into property changes; nothing is applied on an error.
func rawChanges(r *http.Request, allowed []string, build func(string, json.RawMessage) ([]types.PropertyChange, *apiError)) ([]types.PropertyChange, *apiError) {
	body, err := readObject(r)
	if err != nil {
		return nil, err
	}
	var changes []types.PropertyChange
	for _, k := range sortedKeys(body) {
		known := false
		for _, a := range allowed {
			known = known || a == k
		}
		if !known {
			return nil, unknownKey(k, allowed)
		}
		c, err := build(k, body[k])
		if err != nil {
			return nil, err
		}
		changes = append(changes, c...)
	}
	return changes, nil
}

func (s *sim) postHostRaw(r *http.Request, name string) (int, interface{}, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.lookupHost(name)
	if err != nil {
		return 0, nil, err
	}
	changes, err := rawChanges(r, hostRawKeys, func(k string, raw json.RawMessage) ([]types.PropertyChange, *apiError) {
		switch k {
		case "overallCpuUsage", "overallMemoryUsage":
			v, err := int32Value(k, raw)
			return []types.PropertyChange{{Name: "summary.quickStats." + k, Val: v}}, err
		case "overallStatus":
			v, err := stringValue(k, raw)
			st := types.ManagedEntityStatus(v)
			return []types.PropertyChange{{Name: "overallStatus", Val: st}, {Name: "summary.overallStatus", Val: st}}, err
		default: // dasHostState: kept with its reporter, only the state string changes
			v, err := stringValue(k, raw)
			d := &types.ClusterDasFdmHostState{State: v}
			if cur := h.obj.Runtime.DasHostState; cur != nil {
				d.StateReporter = cur.StateReporter
			}
			return []types.PropertyChange{{Name: "runtime.dasHostState", Val: d}, {Name: "summary.runtime.dasHostState", Val: d}}, err
		}
	})
	if err != nil {
		return 0, nil, err
	}
	simulator.Map.WithLock(h.obj, func() { mapUpdate(h.obj, changes) })
	return http.StatusOK, s.hostEntryLocked(h), nil
}

func (s *sim) postVMRaw(r *http.Request, name string) (int, interface{}, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupVM(name)
	if err != nil {
		return 0, nil, err
	}
	changes, err := rawChanges(r, vmRawKeys, func(k string, raw json.RawMessage) ([]types.PropertyChange, *apiError) {
		v, err := int32Value(k, raw)
		return []types.PropertyChange{{Name: "summary.quickStats." + k, Val: v}}, err
	})
	if err != nil {
		return 0, nil, err
	}
	simulator.Map.WithLock(t.obj, func() { mapUpdate(t.obj, changes) })
	j, _ := s.vmJSON(t)
	return http.StatusOK, j, nil
}

// routeRaw serves the /raw endpoints; ok is false for any other path.
func (s *sim) routeRaw(r *http.Request, parts []string) (status int, body interface{}, err *apiError, ok bool) {
	if len(parts) != 3 || parts[2] != "raw" || (parts[0] != "hosts" && parts[0] != "vms") {
		return 0, nil, nil, false
	}
	if r.Method != http.MethodPost {
		return 0, nil, methodNotAllowed(r, "POST"), true
	}
	if parts[0] == "hosts" {
		status, body, err = s.postHostRaw(r, parts[1])
	} else {
		status, body, err = s.postVMRaw(r, parts[1])
	}
	return status, body, err, true
}
