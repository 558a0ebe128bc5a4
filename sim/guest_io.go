package main

// Guest I/O in performance counters: what vSphere HA's VM-monitoring I/O check reads.
//
// vSphere HA resets a VM whose heartbeats stopped only if it also saw no disk and no
// network I/O over das.iostatsinterval. vcsim answers QueryPerf with sample data plus noise
// for every VM, so every guest looks busy, hung or not. The simulator post-processes
// QueryPerf answers for VMs: a VM whose guest is hung (an injected red guest heartbeat) or
// that is not powered on reports zero for every disk, virtualDisk, datastore and net
// counter; a VM pinned "busy" (POST /api/v1/vms/{name}/ha {"io": "busy"}: a busy guest
// whose Tools service hung) reports at least 1 for them; "idle" pins zeros; "auto" (the
// default) derives. vcsim still authenticates and answers the call; only values change.

import (
	"bytes"
	"fmt"
	"net/http"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

var ioModes = []string{"auto", "idle", "busy"}

// ioPinned holds the "io" mode set through the API, by VM; absent = auto.
var ioPinned = map[types.ManagedObjectReference]string{}

var ioGroups = map[string]bool{"disk": true, "virtualDisk": true, "datastore": true, "net": true}

// ioCounters is the set of counter ids in ioGroups (from vcsim's counter catalogue).
func ioCounters() map[int32]bool {
	out := map[int32]bool{}
	ref := types.ManagedObjectReference{Type: "PerformanceManager", Value: "PerfMgr"}
	var counters []types.PerfCounterInfo
	switch pm := simulator.Map.Get(ref).(type) {
	case *simulator.PerformanceManager:
		counters = pm.PerfCounter
	case *perfManager: // sim/perfzeros.go: vcsim's, with zero samples kept
		counters = pm.PerfCounter
	default:
		return out
	}
	for _, c := range counters {
		if ioGroups[c.GroupInfo.GetElementDescription().Key] {
			out[c.Key] = true
		}
	}
	return out
}

// guestIOMode is "idle", "busy" or "" (leave vcsim's values) for one VM, now.
func (s *sim) guestIOMode(r types.ManagedObjectReference) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.vms[r]
	if t == nil {
		return ""
	}
	mode := ioPinned[r]
	if mode == "idle" || mode == "busy" {
		return mode
	}
	running := false
	simulator.Map.WithLock(t.obj, func() { running = t.obj.Runtime.PowerState == vmPoweredOn })
	if !running || t.ov.guestHeartbeat == types.ManagedEntityStatusRed {
		return "idle"
	}
	return ""
}

type queryPerfEnvelope struct {
	Body struct {
		Res *types.QueryPerfResponse `xml:"QueryPerfResponse"`
	} `xml:"Body"`
}

// serveQueryPerf lets vcsim answer QueryPerf (it authenticates), then applies the guest I/O
// model to VM entities.
func (s *sim) serveQueryPerf(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rec := newBufferedResponse()
	next.ServeHTTP(rec, r)
	out := rec.body.Bytes()
	if rec.status != 0 && rec.status != http.StatusOK {
		rec.flush(w, out)
		return
	}
	var env queryPerfEnvelope
	dec := xml.NewDecoder(bytes.NewReader(out))
	dec.TypeFunc = types.TypeFunc()
	if err := dec.Decode(&env); err != nil || env.Body.Res == nil {
		rec.flush(w, out)
		return
	}
	var counters map[int32]bool
	changed := false
	for _, base := range env.Body.Res.Returnval {
		m, ok := base.(*types.PerfEntityMetric)
		if !ok || m.Entity.Type != "VirtualMachine" {
			continue
		}
		mode := s.guestIOMode(m.Entity)
		if mode == "" {
			continue
		}
		if counters == nil {
			counters = ioCounters()
		}
		for _, series := range m.Value {
			ints, ok := series.(*types.PerfMetricIntSeries)
			if !ok || !counters[ints.Id.CounterId] {
				continue
			}
			for i, v := range ints.Value {
				switch {
				case mode == "idle":
					ints.Value[i] = 0
				case v < 1:
					ints.Value[i] = 1
				}
			}
			changed = true
		}
	}
	if !changed {
		rec.flush(w, out)
		return
	}
	body, ok := encodeQueryPerf(env.Body.Res)
	if !ok {
		rec.flush(w, out)
		return
	}
	rec.flush(w, body)
}

// encodeQueryPerf writes a QueryPerfResponse of PerfEntityMetric / PerfMetricIntSeries by
// hand: the vim25 xml encoder drops zero elements of []int64 ("omitempty" applies to each
// element), and zero is exactly what an idle guest reports.
func encodeQueryPerf(res *types.QueryPerfResponse) ([]byte, bool) {
	var b bytes.Buffer
	esc := func(v string) { _ = xml.EscapeText(&b, []byte(v)) }
	b.WriteString(envelopeStart)
	b.WriteString(`<QueryPerfResponse xmlns="urn:vim25">`)
	for _, base := range res.Returnval {
		m, ok := base.(*types.PerfEntityMetric)
		if !ok {
			return nil, false
		}
		b.WriteString(`<returnval xsi:type="PerfEntityMetric">`)
		writeRef(&b, "entity", m.Entity)
		for _, si := range m.SampleInfo {
			fmt.Fprintf(&b, `<sampleInfo><timestamp>%s</timestamp><interval>%d</interval></sampleInfo>`,
				si.Timestamp.UTC().Format(time.RFC3339Nano), si.Interval)
		}
		for _, series := range m.Value {
			ints, ok := series.(*types.PerfMetricIntSeries)
			if !ok {
				return nil, false
			}
			fmt.Fprintf(&b, `<value xsi:type="PerfMetricIntSeries"><id><counterId>%d</counterId><instance>`, ints.Id.CounterId)
			esc(ints.Id.Instance)
			b.WriteString(`</instance></id>`)
			for _, v := range ints.Value {
				fmt.Fprintf(&b, `<value>%d</value>`, v)
			}
			b.WriteString(`</value>`)
		}
		b.WriteString(`</returnval>`)
	}
	b.WriteString(`</QueryPerfResponse>`)
	b.WriteString(envelopeEnd)
	return b.Bytes(), true
}
