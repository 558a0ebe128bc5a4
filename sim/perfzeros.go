package main

// Performance samples as vCenter sends them: zeros included, oldest first, CSV on request.
//
// vcsim's PerformanceManager.QueryPerf fills a counter it has no sample data for with 0,
// but encodes the answer with govmomi's types.PerfMetricIntSeries, whose
// `Value []int64 xml:"value,omitempty"` drops every zero element (omitempty applies to each
// element of a slice). A QueryPerf answer from vcsim therefore never carries a 0 sample, and
// a series of one sample (maxSample=1, what the exporter asks for) that is 0 arrives with no
// value at all. A real vCenter sends the 0: the vSphere API reference says of
// PerfMetricIntSeries.value that "the size of the array matches the size as the
// PerfSampleInfo", since a value can only be read against its sample. A VM that is not
// ballooning reports mem.vmmemctl 0, not nothing.
//
// vcsim also lists samples newest first and ignores PerfQuerySpec.format; vCenter lists
// them oldest first (a client takes the last value as the newest) and answers format "csv"
// with PerfEntityMetricCSV (sampleInfoCSV "interval,timestamp,..." and each series as one
// comma-separated string).
//
// How: the PerformanceManager in vcsim's registry is replaced by perfManager, which embeds
// it (property reads and every other method are vcsim's) and overrides QueryPerf: it runs
// vcsim's QueryPerf and re-types each series as the PerfMetricIntSeries below, the same
// XML element and xsi:type with every sample present, or as PerfEntityMetricCSV. vcsim
// still authenticates the call, builds the envelope and answers faults.

import (
	"strconv"
	"strings"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// PerfMetricIntSeries is types.PerfMetricIntSeries without omitempty on its values. Its Go
// name is the xsi:type the encoder writes, so it must stay "PerfMetricIntSeries".
type PerfMetricIntSeries struct {
	types.PerfMetricSeries

	Value []int64 `xml:"value"`
}

// perfManager is vcsim's PerformanceManager with a QueryPerf that keeps zero samples. It
// embeds a copy by value (the struct holds only slices and maps, shared with the original):
// vcsim's property collector finds the mo type through embedded values, not pointers.
type perfManager struct {
	simulator.PerformanceManager
}

// initPerf installs perfManager in place of vcsim's PerformanceManager.
func (s *sim) initPerf() {
	content := simulator.Map.Get(vim25.ServiceInstance).(*simulator.ServiceInstance).Content
	if content.PerfManager == nil {
		return
	}
	pm, ok := simulator.Map.Get(*content.PerfManager).(*simulator.PerformanceManager)
	if !ok {
		return
	}
	simulator.Map.Put(&perfManager{*pm})
}

// QueryPerf answers as vCenter does (see the top of this file).
func (p *perfManager) QueryPerf(ctx *simulator.Context, req *types.QueryPerf) soap.HasFault {
	body, ok := p.PerformanceManager.QueryPerf(ctx, req).(*methods.QueryPerfBody)
	if !ok || body.Fault_ != nil || body.Res == nil {
		return body
	}
	for i, rv := range body.Res.Returnval {
		m, ok := rv.(*types.PerfEntityMetric)
		if !ok {
			continue
		}
		p.expandDatastoreInstances(m) // sim/datastore_perf.go: one series per datastore
		chronological(m)
		if i < len(req.QuerySpec) && req.QuerySpec[i].Format == string(types.PerfFormatCsv) {
			body.Res.Returnval[i] = asCSV(m)
			continue
		}
		for j, series := range m.Value {
			if s, ok := series.(*types.PerfMetricIntSeries); ok {
				m.Value[j] = &PerfMetricIntSeries{PerfMetricSeries: s.PerfMetricSeries, Value: s.Value}
			}
		}
	}
	return body
}

// chronological puts vcsim's newest-first samples in vCenter's order, oldest first.
func chronological(m *types.PerfEntityMetric) {
	info := m.SampleInfo
	for a, b := 0, len(info)-1; a < b; a, b = a+1, b-1 {
		info[a], info[b] = info[b], info[a]
	}
	for _, series := range m.Value {
		s, ok := series.(*types.PerfMetricIntSeries)
		if !ok {
			continue
		}
		v := s.Value
		for a, b := 0, len(v)-1; a < b; a, b = a+1, b-1 {
			v[a], v[b] = v[b], v[a]
		}
	}
}

// asCSV is m in format "csv": PerfEntityMetricCSV, whose sampleInfoCSV is
// "interval1,date1,interval2,date2,..." and each series one "v1,v2,..." string.
func asCSV(m *types.PerfEntityMetric) *types.PerfEntityMetricCSV {
	info := make([]string, 0, 2*len(m.SampleInfo))
	for _, si := range m.SampleInfo {
		info = append(info, strconv.Itoa(int(si.Interval)), si.Timestamp.UTC().Format(time.RFC3339))
	}
	out := &types.PerfEntityMetricCSV{
		PerfEntityMetricBase: m.PerfEntityMetricBase,
		SampleInfoCSV:        strings.Join(info, ","),
	}
	for _, series := range m.Value {
		s, ok := series.(*types.PerfMetricIntSeries)
		if !ok {
			continue
		}
		vals := make([]string, len(s.Value))
		for k, v := range s.Value {
			vals[k] = strconv.FormatInt(v, 10)
		}
		out.Value = append(out.Value, types.PerfMetricSeriesCSV{
			PerfMetricSeries: s.PerfMetricSeries,
			Value:            strings.Join(vals, ","),
		})
	}
	return out
}
