// vCenter alarms: a few Alarm definitions named like vCenter's defaults, and triggered
// alarm states that the fault API sets, acknowledges and clears. vcsim (govmomi 0.24) has
// no alarms at all.
//
// Like vCenter, a triggered alarm shows in the triggeredAlarmState of its entity and of
// every ancestor up to the root folder, and changing it sends no property-collector update
// (the API reference: "vSphere Servers might not generate property collector update
// notifications for this property"), so clients must poll it. See docs/simulator.md.
package main

import (
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// defaultAlarms are a subset of the alarm definitions a fresh vCenter has.
var defaultAlarms = []string{
	"Host connection and power state",
	"Host hardware sensor status",
	"Host CPU usage",
	"Host memory usage",
	"Virtual machine CPU usage",
	"Virtual machine memory usage",
	"Datastore usage on disk",
	"vSphere HA host status",
	"vSphere HA virtual machine failover failed",
}

var alarmEntityTypes = []string{"host", "vm", "cluster", "datastore", "datacenter"}

type triggered struct {
	alarm  types.ManagedObjectReference
	entity types.ManagedObjectReference
	state  types.AlarmState
}

// alarmTable is guarded by sim.mu.
type alarmTable struct {
	byName    map[string]types.ManagedObjectReference
	names     map[types.ManagedObjectReference]string
	triggered []*triggered
}

var alarms = &alarmTable{byName: map[string]types.ManagedObjectReference{}, names: map[types.ManagedObjectReference]string{}}

// createAlarms registers the default Alarm objects (RetrieveProperties serves info.name).
func (s *sim) createAlarms() {
	root := simulator.Map.Get(vim25.ServiceInstance).(*simulator.ServiceInstance).Content.RootFolder
	for _, name := range defaultAlarms {
		a := &mo.Alarm{}
		a.Self = types.ManagedObjectReference{Type: "Alarm"}
		a.Info = types.AlarmInfo{
			AlarmSpec:        types.AlarmSpec{Name: name, Description: name, Enabled: true},
			Entity:           root,
			LastModifiedTime: time.Now(),
			LastModifiedUser: "VSPHERE.LOCAL\\Administrator",
		}
		simulator.Map.Put(a)
		a.Info.Key = a.Self.Value
		a.Info.Alarm = a.Self
		alarms.byName[name] = a.Self
		alarms.names[a.Self] = name
	}
}

// entityRef resolves an entity of the fault API by type and name.
func (s *sim) entityRef(kind, name string) (types.ManagedObjectReference, *apiError) {
	switch kind {
	case "host":
		if h := s.hostByName[name]; h != nil {
			return h.ref, nil
		}
	case "vm":
		if ref, ok := s.vmByName[name]; ok {
			return ref, nil
		}
	case "cluster":
		if c := s.clusterByName[name]; c != nil {
			return c.ref, nil
		}
	case "datacenter":
		for _, dc := range s.dcs {
			if dc.name == name {
				return dc.ref, nil
			}
		}
	case "datastore":
		for _, obj := range simulator.Map.All("Datastore") {
			if obj.Entity().Name == name {
				return obj.Reference(), nil
			}
		}
	default:
		return types.ManagedObjectReference{}, errf(http.StatusBadRequest,
			"entity_type: invalid value %q (allowed: host, vm, cluster, datastore, datacenter)", kind)
	}
	return types.ManagedObjectReference{}, errf(http.StatusNotFound, "unknown %s %q", kind, name)
}

// publishAlarmsLocked rewrites triggeredAlarmState on every entity and its ancestors.
func (s *sim) publishAlarmsLocked(touched map[types.ManagedObjectReference]bool) {
	states := map[types.ManagedObjectReference][]types.AlarmState{}
	chain := func(ref types.ManagedObjectReference, f func(types.ManagedObjectReference)) {
		for depth := 0; depth < 64; depth++ {
			f(ref)
			obj, ok := simulator.Map.Get(ref).(mo.Entity)
			if !ok || obj.Entity().Parent == nil {
				return
			}
			ref = *obj.Entity().Parent
		}
	}
	for _, t := range alarms.triggered {
		chain(t.entity, func(r types.ManagedObjectReference) {
			states[r] = append(states[r], t.state)
			touched[r] = true
		})
	}
	for ref := range touched {
		obj := simulator.Map.Get(ref)
		e, ok := obj.(mo.Entity)
		if !ok {
			continue
		}
		simulator.Map.WithLock(obj, func() { e.Entity().TriggeredAlarmState = states[ref] })
	}
}

type alarmRequest struct {
	Alarm        string `json:"alarm"`
	EntityType   string `json:"entity_type"`
	Entity       string `json:"entity"`
	Status       string `json:"status"`
	Acknowledged bool   `json:"acknowledged"`
}

func (s *sim) alarmsJSONLocked() map[string]interface{} {
	defs := []map[string]string{}
	for _, name := range defaultAlarms {
		defs = append(defs, map[string]string{"name": name, "moid": alarms.byName[name].Value})
	}
	trig := []map[string]interface{}{}
	for _, t := range alarms.triggered {
		trig = append(trig, map[string]interface{}{
			"alarm": alarms.names[t.alarm], "entity_moid": t.entity.Value, "entity_type": t.entity.Type,
			"status": string(t.state.OverallStatus), "acknowledged": t.state.Acknowledged != nil && *t.state.Acknowledged,
		})
	}
	sort.Slice(trig, func(i, j int) bool { return trig[i]["entity_moid"].(string) < trig[j]["entity_moid"].(string) })
	return map[string]interface{}{"definitions": defs, "triggered": trig}
}

// routeAlarms serves /api/v1/alarms[/trigger|/acknowledge|/clear].
func (s *sim) routeAlarms(r *http.Request, parts []string) (int, interface{}, *apiError) {
	if len(parts) == 0 {
		if r.Method != http.MethodGet {
			return 0, nil, methodNotAllowed(r, "GET")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return http.StatusOK, s.alarmsJSONLocked(), nil
	}
	if len(parts) != 1 || (parts[0] != "trigger" && parts[0] != "acknowledge" && parts[0] != "clear") {
		return 0, nil, errf(http.StatusNotFound, "no such endpoint: %s", r.URL.Path)
	}
	if r.Method != http.MethodPost {
		return 0, nil, methodNotAllowed(r, "POST")
	}
	raw, aerr := readObject(r)
	if aerr != nil {
		return 0, nil, aerr
	}
	allowed := []string{"alarm", "entity_type", "entity", "status", "acknowledged"}
	for _, k := range sortedKeys(raw) {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return 0, nil, unknownKey(k, allowed)
		}
	}
	buf, _ := json.Marshal(raw)
	var req alarmRequest
	if err := json.Unmarshal(buf, &req); err != nil {
		return 0, nil, errf(http.StatusBadRequest, "bad body: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	touched := map[types.ManagedObjectReference]bool{}
	for _, t := range alarms.triggered { // clear old chains too
		touched[t.entity] = true
	}
	var alarm, entity types.ManagedObjectReference
	if req.Alarm != "" || parts[0] != "clear" {
		ref, ok := alarms.byName[req.Alarm]
		if !ok {
			return 0, nil, errf(http.StatusNotFound, "unknown alarm %q (known: see GET /api/v1/alarms)", req.Alarm)
		}
		alarm = ref
	}
	if req.Entity != "" || parts[0] != "clear" {
		ref, err := s.entityRef(req.EntityType, req.Entity)
		if err != nil {
			return 0, nil, err
		}
		entity = ref
	}
	find := func() *triggered {
		for _, t := range alarms.triggered {
			if t.alarm == alarm && t.entity == entity {
				return t
			}
		}
		return nil
	}
	switch parts[0] {
	case "trigger":
		if _, err := enumValue("status", json.RawMessage(`"`+req.Status+`"`), []string{"yellow", "red"}); err != nil {
			return 0, nil, err
		}
		t := find()
		if t == nil {
			t = &triggered{alarm: alarm, entity: entity}
			alarms.triggered = append(alarms.triggered, t)
		}
		ack := req.Acknowledged
		t.state = types.AlarmState{
			Key: alarm.Value + "." + entity.Value, Entity: entity, Alarm: alarm,
			OverallStatus: types.ManagedEntityStatus(req.Status), Time: time.Now(), Acknowledged: &ack,
		}
		if ack {
			t.state.AcknowledgedByUser = "VSPHERE.LOCAL\\Administrator"
			t.state.AcknowledgedTime = types.NewTime(time.Now())
		}
	case "acknowledge":
		t := find()
		if t == nil {
			return 0, nil, errf(http.StatusNotFound, "alarm %q is not triggered on %s %q", req.Alarm, req.EntityType, req.Entity)
		}
		ack := true
		t.state.Acknowledged = &ack
		t.state.AcknowledgedByUser = "VSPHERE.LOCAL\\Administrator"
		t.state.AcknowledgedTime = types.NewTime(time.Now())
	case "clear":
		kept := alarms.triggered[:0]
		for _, t := range alarms.triggered {
			if (req.Alarm != "" && t.alarm != alarm) || (req.Entity != "" && t.entity != entity) {
				kept = append(kept, t)
			}
		}
		alarms.triggered = kept
	}
	s.publishAlarmsLocked(touched)
	return http.StatusOK, s.alarmsJSONLocked(), nil
}
