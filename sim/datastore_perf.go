package main

// Datastore performance counters per datastore instance, as vCenter reports them.
//
// A real vCenter answers a host's (or VM's) QueryPerf for a counter of the `datastore` group
// with instance "*" with one series per datastore the entity uses, each named by the
// datastore's UUID: the last path component of its DatastoreSummary.url
// (ds:///vmfs/volumes/<uuid>/). The group has no aggregate instance ("Instance/Aggregate:
// instance" in the vSphere Web Services API's datastore counter table). vcsim 0.24 instead
// echoes the requested id: one series with instance "*", and 0 for a host (it has no
// sample data for the group).
//
// How: perfManager.QueryPerf (sim/perfzeros.go) calls expandDatastoreInstances on vcsim's
// answer before anything else. A "*" series of a datastore counter becomes one series per
// datastore of the entity (HostSystem.datastore, VirtualMachine.datastore), its instance the
// last path component of the datastore's url, as on vCenter. The simulator's datastore
// URLs stay vcsim's local directories (vcsim resolves datastore paths through them; a
// ds:/// URL would break file operations), so the instance is that directory's name: the
// same rule, another identifier. A host's values come from a per-datastore model, the
// same for every host that mounts it, settable through
// GET|POST /api/v1/datastores/{name}/perf; a VM keeps vcsim's value for each of its
// datastores (the guest I/O model, sim/guest_io.go, still applies on top).

import (
	"encoding/json"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// dsPerfKeys are the model's fields: per host that mounts the datastore, per 20 s sample.
var dsPerfKeys = []string{"readLatencyMs", "writeLatencyMs", "readsPerSecond", "writesPerSecond"}

// dsPerfCounter maps a datastore-group counter name to the model's field.
var dsPerfCounter = map[string]string{
	"totalReadLatency":    "readLatencyMs",
	"totalWriteLatency":   "writeLatencyMs",
	"numberReadAveraged":  "readsPerSecond",
	"numberWriteAveraged": "writesPerSecond",
}

// dsPerfDefault is what every host reports for a datastore until the API sets it: a
// lightly loaded datastore, so that dashboards show something.
var dsPerfDefault = map[string]int64{
	"readLatencyMs": 2, "writeLatencyMs": 3, "readsPerSecond": 40, "writesPerSecond": 20,
}

var (
	dsPerfMu    sync.Mutex
	dsPerfModel = map[types.ManagedObjectReference]map[string]int64{}
)

// datastorePerf is the model of one datastore (a copy).
func datastorePerf(ref types.ManagedObjectReference) map[string]int64 {
	dsPerfMu.Lock()
	defer dsPerfMu.Unlock()
	out := map[string]int64{}
	for k, v := range dsPerfDefault {
		out[k] = v
	}
	for k, v := range dsPerfModel[ref] {
		out[k] = v
	}
	return out
}

// datastoreInstance is the perf instance of a datastore: the last path component of its url.
func datastoreInstance(ref types.ManagedObjectReference) (string, bool) {
	ds, ok := simulator.Map.Get(ref).(*simulator.Datastore)
	if !ok {
		return "", false
	}
	url := ds.Summary.Url
	if info := ds.Info.GetDatastoreInfo(); info != nil && info.Url != "" {
		url = info.Url
	}
	name := path.Base(strings.TrimRight(url, "/"))
	return name, name != "" && name != "." && name != "/"
}

// datastoreCounters names the counters of the datastore group by id.
func datastoreCounters(p *perfManager) map[int32]string {
	out := map[int32]string{}
	for _, c := range p.PerfCounter {
		if c.GroupInfo.GetElementDescription().Key == "datastore" {
			out[c.Key] = c.NameInfo.GetElementDescription().Key
		}
	}
	return out
}

// entityDatastores is the datastores a host or VM uses, as vcsim records them.
func entityDatastores(ref types.ManagedObjectReference) []types.ManagedObjectReference {
	switch obj := simulator.Map.Get(ref).(type) {
	case *simulator.HostSystem:
		return obj.Datastore
	case *simulator.VirtualMachine:
		return obj.Datastore
	}
	return nil
}

// expandDatastoreInstances rewrites each "*" series of a datastore counter as vCenter sends
// it: one series per datastore of the entity (see the top of this file).
func (p *perfManager) expandDatastoreInstances(m *types.PerfEntityMetric) {
	if m.Entity.Type != "HostSystem" && m.Entity.Type != "VirtualMachine" {
		return
	}
	var counters map[int32]string
	var datastores []types.ManagedObjectReference
	out := make([]types.BasePerfMetricSeries, 0, len(m.Value))
	for _, series := range m.Value {
		s, ok := series.(*types.PerfMetricIntSeries)
		if !ok || s.Id.Instance != "*" {
			out = append(out, series)
			continue
		}
		if counters == nil {
			counters = datastoreCounters(p)
			datastores = entityDatastores(m.Entity)
		}
		name, isDatastore := counters[s.Id.CounterId]
		if !isDatastore {
			out = append(out, series)
			continue
		}
		for _, ds := range datastores {
			instance, ok := datastoreInstance(ds)
			if !ok {
				continue
			}
			values := append([]int64(nil), s.Value...)
			if m.Entity.Type == "HostSystem" {
				v := datastorePerf(ds)[dsPerfCounter[name]] // 0 for the group's other counters
				for i := range values {
					values[i] = v
				}
			}
			id := s.Id
			id.Instance = instance
			out = append(out, &types.PerfMetricIntSeries{
				PerfMetricSeries: types.PerfMetricSeries{Id: id},
				Value:            values,
			})
		}
	}
	m.Value = out
}

// routeDatastorePerf serves GET|POST /api/v1/datastores/{name}/perf: what each host that
// mounts the datastore reports for it. Caller holds s.mu.
func (s *sim) routeDatastorePerf(r *http.Request, ds *simulator.Datastore) (int, interface{}, *apiError) {
	return serveState(r, func() interface{} { return datastorePerfJSON(ds) },
		func(body map[string]json.RawMessage) (interface{}, *apiError) { return setDatastorePerf(ds, body) })
}

// setDatastorePerf applies a POST's counters to the datastore's model (all or nothing).
func setDatastorePerf(ds *simulator.Datastore, body map[string]json.RawMessage) (interface{}, *apiError) {
	ref := ds.Self
	set := map[string]int64{}
	for _, k := range sortedKeys(body) {
		if _, known := dsPerfDefault[k]; !known {
			return nil, unknownKey(k, dsPerfKeys)
		}
		var v int64
		if err := json.Unmarshal(body[k], &v); err != nil || v < 0 {
			return nil, errf(http.StatusBadRequest, "%s: expected an integer >= 0", k)
		}
		set[k] = v
	}
	dsPerfMu.Lock()
	if dsPerfModel[ref] == nil {
		dsPerfModel[ref] = map[string]int64{}
	}
	for k, v := range set {
		dsPerfModel[ref][k] = v
	}
	dsPerfMu.Unlock()
	return datastorePerfJSON(ds), nil
}

func datastorePerfJSON(ds *simulator.Datastore) map[string]interface{} {
	out := map[string]interface{}{"name": ds.Name, "moid": ds.Self.Value}
	instance, _ := datastoreInstance(ds.Self)
	out["instance"] = instance
	for k, v := range datastorePerf(ds.Self) {
		out[k] = v
	}
	return out
}
