// Datastores as vCenter reports them where vcsim does not: summary.uncommitted (thin
// provisioning: the space VMs may still grow into), type VMFS for the local datastore
// (vcsim says OTHER), and a fault API to change maintenance mode, free and uncommitted space.
// See docs/simulator.md ("Datastores").
package main

import (
	"encoding/json"
	"net/http"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const vmUncommittedBytes = int64(20) << 30 // each demo VM's thin disks may grow by 20 GiB

var datastoreKeys = []string{"maintenanceMode", "freeSpace", "uncommitted", "accessible"}
var datastoreMaintenanceModes = []string{"normal", "enteringMaintenance", "inMaintenance"}

func (s *sim) datastoreByName(name string) (*simulator.Datastore, *apiError) {
	for _, obj := range simulator.Map.All("Datastore") {
		if ds := obj.(*simulator.Datastore); ds.Name == name {
			return ds, nil
		}
	}
	return nil, errf(http.StatusNotFound, "unknown datastore %q", name)
}

// initDatastores fills in what vcsim leaves out, once the VMs exist.
func (s *sim) initDatastores() {
	for _, obj := range simulator.Map.All("Datastore") {
		ds := obj.(*simulator.Datastore)
		simulator.Map.WithLock(ds, func() {
			uncommitted := int64(len(ds.Vm)) * vmUncommittedBytes
			ds.Summary.Uncommitted = uncommitted
			if ds.Summary.Type == "OTHER" {
				ds.Summary.Type = "VMFS"
			}
			if ds.Summary.MaintenanceMode == "" {
				ds.Summary.MaintenanceMode = "normal"
			}
		})
	}
}

func datastoreJSON(ds *simulator.Datastore) map[string]interface{} {
	hosts := []string{}
	for _, m := range ds.Host {
		hosts = append(hosts, m.Key.Value)
	}
	return map[string]interface{}{
		"name": ds.Name, "moid": ds.Self.Value, "type": ds.Summary.Type,
		"capacity": ds.Summary.Capacity, "freeSpace": ds.Summary.FreeSpace,
		"uncommitted": ds.Summary.Uncommitted, "maintenanceMode": ds.Summary.MaintenanceMode,
		"accessible": ds.Summary.Accessible, "hosts": hosts,
	}
}

// routeDatastores serves GET /api/v1/datastores and GET|POST /api/v1/datastores/{name}.
func (s *sim) routeDatastores(r *http.Request, parts []string) (int, interface{}, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(parts) == 0 {
		if r.Method != http.MethodGet {
			return 0, nil, methodNotAllowed(r, "GET")
		}
		out := []map[string]interface{}{}
		for _, obj := range simulator.Map.All("Datastore") {
			ds := obj.(*simulator.Datastore)
			simulator.Map.WithLock(ds, func() { out = append(out, datastoreJSON(ds)) })
		}
		return http.StatusOK, map[string]interface{}{"datastores": out}, nil
	}
	if len(parts) != 1 && !(len(parts) == 2 && parts[1] == "perf") {
		return 0, nil, errf(http.StatusNotFound, "no such endpoint: %s", r.URL.Path)
	}
	ds, aerr := s.datastoreByName(parts[0])
	if aerr != nil {
		return 0, nil, aerr
	}
	if len(parts) == 2 {
		return s.routeDatastorePerf(r, ds) // sim/datastore_perf.go
	}
	return serveState(r, func() interface{} {
		var out map[string]interface{}
		simulator.Map.WithLock(ds, func() { out = datastoreJSON(ds) })
		return out
	}, func(body map[string]json.RawMessage) (interface{}, *apiError) { return setDatastore(ds, body) })
}

// setDatastore applies a POST's summary changes (checked first, then all at once).
func setDatastore(ds *simulator.Datastore, body map[string]json.RawMessage) (interface{}, *apiError) {
	var aerr *apiError
	var changes []types.PropertyChange
	var mode string
	var free, uncommitted *int64
	var accessible *bool
	for _, k := range sortedKeys(body) {
		raw := body[k]
		switch k {
		case "maintenanceMode":
			if mode, aerr = enumValue(k, raw, datastoreMaintenanceModes); aerr != nil {
				return nil, aerr
			}
		case "freeSpace", "uncommitted":
			var v int64
			if err := json.Unmarshal(raw, &v); err != nil || v < 0 {
				return nil, errf(http.StatusBadRequest, "%s: expected bytes, an integer >= 0", k)
			}
			if k == "freeSpace" {
				if v > ds.Summary.Capacity {
					return nil, errf(http.StatusBadRequest, "freeSpace: %d exceeds the capacity %d", v, ds.Summary.Capacity)
				}
				free = &v
			} else {
				uncommitted = &v
			}
		case "accessible":
			v, err := boolValue(k, raw)
			if err != nil {
				return nil, err
			}
			accessible = &v
		default:
			return nil, unknownKey(k, datastoreKeys)
		}
	}
	var out map[string]interface{}
	simulator.Map.WithLock(ds, func() {
		if mode != "" {
			ds.Summary.MaintenanceMode = mode
			changes = append(changes, types.PropertyChange{Name: "summary.maintenanceMode", Val: mode})
		}
		if free != nil {
			ds.Summary.FreeSpace = *free
			ds.Info.GetDatastoreInfo().FreeSpace = *free
			changes = append(changes, types.PropertyChange{Name: "summary.freeSpace", Val: *free})
		}
		if uncommitted != nil {
			ds.Summary.Uncommitted = *uncommitted
			changes = append(changes, types.PropertyChange{Name: "summary.uncommitted", Val: *uncommitted})
		}
		if accessible != nil {
			ds.Summary.Accessible = *accessible
			changes = append(changes, types.PropertyChange{Name: "summary.accessible", Val: *accessible})
		}
		if len(changes) > 0 {
			changes = append(changes, types.PropertyChange{Name: "summary", Val: ds.Summary})
			simulator.Map.Update(ds, changes)
		}
		out = datastoreJSON(ds)
	})
	return out, nil
}
