// Host hardware health sensors with readings: vcsim's hosts only carry discrete sensors
// (rollup health, CPU caches) whose reading is 0 and units empty; a real ESXi host also
// reports temperatures, fans, power and voltages with thresholds. sim/sensors.go adds four
// such sensors per host and a fault API to change a sensor's health and reading.
// See docs/simulator.md ("Host sensors").
package main

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const sensorsPath = "runtime.healthSystemRuntime.systemHealthInfo.numericSensorInfo"

var sensorHealthStates = []string{"green", "yellow", "red", "unknown"}

// demoSensors: name, type, reading in base units, modifier, base units.
var demoSensors = []struct {
	name, kind string
	value      float64
	modifier   int32
	units      string
}{
	{"System Board 1 Inlet Temp", "temperature", 24.0, -2, "Degrees C"},
	{"Fan 1A", "fan", 8400, 0, "RPM"},
	{"Power Supply 1 Input Power", "power", 350, 0, "Watts"},
	{"Processor 1 Vcore", "voltage", 1.18, -2, "Volts"},
}

func sensorHealth(key string) *types.ElementDescription {
	label := strings.ToUpper(key[:1]) + key[1:]
	summaries := map[string]string{
		"green": "Sensor is operating under normal conditions", "yellow": "Sensor is operating under conditions that are non-critical",
		"red": "Sensor is operating under critical or fatal conditions", "unknown": "Cannot report on the current health state",
	}
	return &types.ElementDescription{Description: types.Description{Label: label, Summary: summaries[key]}, Key: key}
}

func reading(value float64, modifier int32) int64 {
	return int64(math.Round(value / math.Pow(10, float64(modifier))))
}

// initSensors appends the demo sensors to every host's numericSensorInfo.
func (s *sim) initSensors() {
	for _, h := range s.hosts {
		simulator.Map.WithLock(h.obj, func() {
			// vcsim's hosts are value copies of one template whose HealthSystemRuntime is
			// a pointer: every host shares it. A real host has its own sensors, so each
			// host gets its own copy before the demo sensors are appended (appending to
			// the shared slice gave every host every host's sensors).
			rt := &types.HealthSystemRuntime{}
			if shared := h.obj.Runtime.HealthSystemRuntime; shared != nil {
				*rt = *shared
			}
			info := &types.HostSystemHealthInfo{}
			if rt.SystemHealthInfo != nil {
				*info = *rt.SystemHealthInfo
			}
			info.NumericSensorInfo = append([]types.HostNumericSensorInfo(nil), info.NumericSensorInfo...)
			rt.SystemHealthInfo = info
			h.obj.Runtime.HealthSystemRuntime = rt
			for _, d := range demoSensors {
				rt.SystemHealthInfo.NumericSensorInfo = append(rt.SystemHealthInfo.NumericSensorInfo, types.HostNumericSensorInfo{
					Name: d.name, HealthState: sensorHealth("green"), CurrentReading: reading(d.value, d.modifier),
					UnitModifier: d.modifier, BaseUnits: d.units, SensorType: d.kind,
				})
			}
		})
	}
}

func sensorsJSON(list []types.HostNumericSensorInfo) []map[string]interface{} {
	out := []map[string]interface{}{}
	for _, x := range list {
		health := "unknown"
		if x.HealthState != nil {
			health = x.HealthState.GetElementDescription().Key
		}
		out = append(out, map[string]interface{}{
			"name": x.Name, "type": x.SensorType, "health": health, "units": x.BaseUnits,
			"reading": float64(x.CurrentReading) * math.Pow(10, float64(x.UnitModifier)),
		})
	}
	return out
}

// routeSensors serves GET|POST /api/v1/sensors/{host}.
func (s *sim) routeSensors(r *http.Request, parts []string) (int, interface{}, *apiError) {
	if len(parts) != 1 {
		return 0, nil, errf(http.StatusNotFound, "no such endpoint: %s", r.URL.Path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h, aerr := s.lookupHost(parts[0])
	if aerr != nil {
		return 0, nil, aerr
	}
	return serveState(r, func() interface{} {
		var out []map[string]interface{}
		simulator.Map.WithLock(h.obj, func() { out = sensorsJSON(hostSensors(h)) })
		return map[string]interface{}{"sensors": out}
	}, func(body map[string]json.RawMessage) (interface{}, *apiError) { return setSensor(h, body) })
}

// hostSensors is the host's numeric sensor list (nil without a health system). Callers hold
// the host's lock.
func hostSensors(h *hostInfo) []types.HostNumericSensorInfo {
	if rt := h.obj.Runtime.HealthSystemRuntime; rt != nil && rt.SystemHealthInfo != nil {
		return rt.SystemHealthInfo.NumericSensorInfo
	}
	return nil
}

// setSensor applies a POST's health and reading to the one sensor it names.
func setSensor(h *hostInfo, body map[string]json.RawMessage) (interface{}, *apiError) {
	var aerr *apiError
	var out []map[string]interface{}
	allowed := []string{"sensor", "health", "reading"}
	var name, health string
	var value *float64
	for _, k := range sortedKeys(body) {
		switch k {
		case "sensor":
			if err := json.Unmarshal(body[k], &name); err != nil || name == "" {
				return nil, errf(http.StatusBadRequest, "sensor: expected the sensor's name")
			}
		case "health":
			if health, aerr = enumValue(k, body[k], sensorHealthStates); aerr != nil {
				return nil, aerr
			}
		case "reading":
			var v float64
			if err := json.Unmarshal(body[k], &v); err != nil {
				return nil, errf(http.StatusBadRequest, "reading: expected a number in the sensor's base units")
			}
			value = &v
		default:
			return nil, unknownKey(k, allowed)
		}
	}
	if name == "" {
		return nil, errf(http.StatusBadRequest, "sensor: required")
	}
	found := false
	simulator.Map.WithLock(h.obj, func() {
		sensors := hostSensors(h)
		for i := range sensors {
			if sensors[i].Name != name {
				continue
			}
			found = true
			if health != "" {
				sensors[i].HealthState = sensorHealth(health)
			}
			if value != nil {
				sensors[i].CurrentReading = reading(*value, sensors[i].UnitModifier)
			}
		}
		if found {
			copied := append([]types.HostNumericSensorInfo(nil), sensors...)
			simulator.Map.Update(h.obj, []types.PropertyChange{
				{Name: sensorsPath, Val: copied},
				{Name: "runtime.healthSystemRuntime", Val: h.obj.Runtime.HealthSystemRuntime},
			})
		}
		out = sensorsJSON(hostSensors(h))
	})
	if !found {
		return nil, errf(http.StatusNotFound, "host %q has no sensor %q", h.name, name)
	}
	return map[string]interface{}{"sensors": out}, nil
}
