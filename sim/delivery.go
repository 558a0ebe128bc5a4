package main

// vCenter-like delivery of changes to WaitForUpdatesEx (issue 15).
//
// A real vCenter keeps, per filter, the set of objects the filter reaches and sends in an
// UpdateSet only what changed: a modify ObjectUpdate with the changed properties the
// filter's PropertySpecs ask for, enter for an object that starts being reached, leave for
// one that stops (API reference: PropertyCollector.WaitForUpdatesEx, UpdateSet,
// ObjectUpdate, PropertyChange).
//
// Debian's govmomi 0.24 vcsim re-runs a RetrievePropertiesEx of the collector's whole
// filter for every queued Enter and Modify (PropertyCollector.apply, called per update in
// WaitForUpdatesEx): 1.7-2.7 s of CPU per change at 10,000 VMs, ~10 s at 40,000, so a host
// flip took 5-60 s to reach a client. Here the root PropertyCollector and every collector
// created with CreatePropertyCollector are a deliveryPC, which embeds vcsim's collector
// (filters, RetrievePropertiesEx, DestroyPropertyFilter stay vcsim's) and serves
// WaitForUpdatesEx itself from a per-collector listener (a Map handler with a reference of
// its own, so collectors of different sessions that share the "propertyCollector"
// reference do not replace each other's handler as vcsim's do):
//
//   - a plain Modify is matched against the filter's PropertySpecs (type incl. embedded mo
//     types, all, pathSet with nested paths both ways) and sent without any collection;
//   - the filter is re-collected (one RetrievePropertiesEx, diffed against the reached
//     set) only when the reached set can change: an Enter or Leave of an object of a type
//     the filter's specs name, or a Modify of a path a TraversalSpec follows (view,
//     childEntity, host, vm, ...). Changes are merged per object between two calls.
//
// -incremental-delivery=false (or POST /api/v1/config {"incrementalDelivery": false})
// hands collectors whose initial WaitForUpdatesEx (version "") comes later back to vcsim.
// The pager (paging.go) sits in front and pages whatever this answers.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// coalesce lets the changes of one operation (several Map.Update calls) share an update set.
const coalesce = 20 * time.Millisecond

type deliveryState struct {
	enabled atomic.Bool

	recollections        atomic.Int64 // whole-filter collections after a filter's first answer
	initialCollections   atomic.Int64 // first answers of filters
	incrementalUpdates   atomic.Int64 // modify ObjectUpdates sent without a collection
	libraryRecollections atomic.Int64 // changes queued to vcsim-served collectors (one collection each)
	waiting              atomic.Int64 // WaitForUpdatesEx calls parked here now

	mu        sync.Mutex
	bySession map[string]map[*listener]bool
}

var delivery = &deliveryState{bySession: map[string]map[*listener]bool{}}

func (d *deliveryState) register(l *listener) {
	simulator.Map.AddHandler(l)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bySession[l.session] == nil {
		d.bySession[l.session] = map[*listener]bool{}
	}
	d.bySession[l.session][l] = true
}

func (d *deliveryState) unregister(l *listener) {
	simulator.Map.RemoveHandler(l)
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.bySession[l.session], l)
	if len(d.bySession[l.session]) == 0 {
		delete(d.bySession, l.session)
	}
}

// forgetSession drops a logged-out session's listeners (vcsim's Logout drops its own
// collectors' handlers; ours have references of their own) and ends their parked waits:
// the session's filters go with it (API reference, PropertyCollector: "When a session
// terminates, the associated PropertyCollector filters are automatically destroyed"),
// and vcsim would leave such a call parked until its maxWaitSeconds, or for ever.
func (d *deliveryState) forgetSession(key string) {
	d.mu.Lock()
	ls := d.bySession[key]
	delete(d.bySession, key)
	d.mu.Unlock()
	for l := range ls {
		simulator.Map.RemoveHandler(l)
		l.end()
	}
}

func (d *deliveryState) json() map[string]interface{} {
	d.mu.Lock()
	served := 0
	for _, ls := range d.bySession {
		for l := range ls {
			if !l.countOnly {
				served++
			}
		}
	}
	d.mu.Unlock()
	return map[string]interface{}{
		"enabled":              d.enabled.Load(),
		"collectors":           served,
		"waiting":              d.waiting.Load(),
		"recollections":        d.recollections.Load(),
		"initialCollections":   d.initialCollections.Load(),
		"incrementalUpdates":   d.incrementalUpdates.Load(),
		"libraryRecollections": d.libraryRecollections.Load(),
	}
}

// filterState is what a served filter has been sent: its spec and the objects it reaches.
type filterState struct {
	spec      types.PropertyFilterSpec
	travPaths []string
	travKinds []string
	reached   map[types.ManagedObjectReference]bool
	missing   map[types.ManagedObjectReference]bool // objectSet roots reported missing
}

// collected is one re-collection of a filter, kept by compute once every filter is done.
type collected struct {
	objs    []types.ObjectUpdate
	reached map[types.ManagedObjectReference]bool
	missing map[types.ManagedObjectReference]bool
	report  []types.MissingObject // roots missing since the last answer
}

type collectorState struct {
	// mu serialises compute and the version bump: two waits on one collector (a client
	// retrying while its first call is parked) would otherwise write the filters' maps
	// at once, which is fatal in Go and would take the simulator down for every client.
	mu      sync.Mutex
	l       *listener
	filters map[types.ManagedObjectReference]*filterState
	version int64
	cancel  context.CancelFunc
}

// deliveryPC is vcsim's PropertyCollector with WaitForUpdatesEx served as vCenter does.
type deliveryPC struct {
	simulator.PropertyCollector

	dmu sync.Mutex
	st  *collectorState // nil or countOnly: vcsim serves WaitForUpdatesEx
}

// installDelivery replaces the root PropertyCollector; vcsim's per-session copies of it
// are made by reflection from its type, so they are deliveryPCs too.
func installDelivery() {
	d := &deliveryPC{}
	d.Self = types.ManagedObjectReference{Type: "PropertyCollector", Value: "propertyCollector"}
	simulator.Map.Put(d)
}

func (d *deliveryPC) CreatePropertyCollector(ctx *simulator.Context, c *types.CreatePropertyCollector) soap.HasFault {
	cpc := &deliveryPC{}
	cpc.Self.Type = "PropertyCollector"
	return &methods.CreatePropertyCollectorBody{
		Res: &types.CreatePropertyCollectorResponse{Returnval: ctx.Session.Put(cpc).Reference()},
	}
}

func (d *deliveryPC) DestroyPropertyCollector(ctx *simulator.Context, c *types.DestroyPropertyCollector) soap.HasFault {
	d.setState(nil)
	return d.PropertyCollector.DestroyPropertyCollector(ctx, c)
}

// CreateFilter is vcsim's, and wakes a parked WaitForUpdatesEx: vCenter delivers a new
// filter's objects to the call waiting on its collector (vSphere Web Services programming
// guide: a wait on a collector without filters "will block until you create a filter or
// until the call times out"); vcsim's only sees them with the next change.
func (d *deliveryPC) CreateFilter(ctx *simulator.Context, c *types.CreateFilter) soap.HasFault {
	res := d.PropertyCollector.CreateFilter(ctx, c)
	if st := d.state(); st != nil && !st.l.countOnly {
		st.l.filterAdded()
	}
	return res
}

func (d *deliveryPC) CancelWaitForUpdates(r *types.CancelWaitForUpdates) soap.HasFault {
	d.dmu.Lock()
	if d.st != nil && d.st.cancel != nil {
		d.st.cancel()
	}
	d.dmu.Unlock()
	return d.PropertyCollector.CancelWaitForUpdates(r)
}

// WaitForUpdates is the deprecated form; vcsim's calls its own WaitForUpdatesEx directly.
func (d *deliveryPC) WaitForUpdates(ctx *simulator.Context, r *types.WaitForUpdates) soap.HasFault {
	res := d.WaitForUpdatesEx(ctx, &types.WaitForUpdatesEx{This: r.This, Version: r.Version})
	body := &methods.WaitForUpdatesBody{}
	ex := res.(*methods.WaitForUpdatesExBody)
	if ex.Fault_ != nil {
		body.Fault_ = ex.Fault_
	} else {
		body.Res = &types.WaitForUpdatesResponse{}
		if ex.Res.Returnval != nil {
			body.Res.Returnval = *ex.Res.Returnval
		}
	}
	return body
}

// setState swaps the collector's state, unregistering the old listener.
func (d *deliveryPC) setState(st *collectorState) {
	d.dmu.Lock()
	old := d.st
	d.st = st
	d.dmu.Unlock()
	if old != nil {
		if old.cancel != nil {
			old.cancel()
		}
		delivery.unregister(old.l)
	}
	if st != nil {
		delivery.register(st.l)
	}
}

func (d *deliveryPC) state() *collectorState {
	d.dmu.Lock()
	defer d.dmu.Unlock()
	return d.st
}

func (d *deliveryPC) WaitForUpdatesEx(ctx *simulator.Context, r *types.WaitForUpdatesEx) soap.HasFault {
	if r.Version == "" {
		fallback := !delivery.enabled.Load()
		if old := d.state(); old != nil && old.l.countOnly && !fallback {
			simulator.Map.RemoveHandler(&d.PropertyCollector) // vcsim's queue for it would only grow
		}
		d.setState(&collectorState{
			l:       newListener(ctx.Session.Key, fallback),
			filters: map[types.ManagedObjectReference]*filterState{},
		})
		if fallback {
			return d.PropertyCollector.WaitForUpdatesEx(ctx, r)
		}
	}
	st := d.state()
	if st == nil || st.l.countOnly {
		return d.PropertyCollector.WaitForUpdatesEx(ctx, r)
	}
	return d.wait(ctx, r, st)
}

func (d *deliveryPC) wait(ctx *simulator.Context, r *types.WaitForUpdatesEx, st *collectorState) soap.HasFault {
	oneUpdate := r.Version == ""
	var timeout <-chan time.Time
	if o := r.Options; o != nil && o.MaxWaitSeconds != nil {
		if *o.MaxWaitSeconds == 0 {
			oneUpdate = true
		} else if *o.MaxWaitSeconds > 0 {
			t := time.NewTimer(time.Duration(*o.MaxWaitSeconds) * time.Second)
			defer t.Stop()
			timeout = t.C
		}
	}
	canceled, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.dmu.Lock()
	st.cancel = cancel
	d.dmu.Unlock()
	delivery.waiting.Add(1)
	defer delivery.waiting.Add(-1)

	body := &methods.WaitForUpdatesExBody{Res: &types.WaitForUpdatesExResponse{}}
	for {
		wake := st.l.waitChan()
		st.mu.Lock()
		set, fault := d.compute(ctx, st)
		if fault != nil {
			st.mu.Unlock()
			return &methods.WaitForUpdatesExBody{Fault_: fault}
		}
		if len(set.FilterSet) > 0 || r.Version == "" {
			st.version++
			set.Version = itoa(st.version)
			st.mu.Unlock()
			body.Res.Returnval = set
			return body
		}
		st.mu.Unlock()
		if oneUpdate {
			return body // no update: returnval unset
		}
		select {
		case <-canceled.Done():
			return &methods.WaitForUpdatesExBody{Fault_: simulator.Fault("", new(types.RequestCanceled))}
		case <-st.l.ended: // the session logged out
			return &methods.WaitForUpdatesExBody{Fault_: simulator.Fault("", new(types.RequestCanceled))}
		case <-timeout:
			return body
		case <-wake:
			time.Sleep(coalesce)
		}
	}
}

// compute builds the update set of everything pending for every filter of the collector.
// It changes nothing until every filter is computed: on a fault the round's changes go
// back to the listener and the reached sets stay, so the next call sends them all.
func (d *deliveryPC) compute(ctx *simulator.Context, st *collectorState) (*types.UpdateSet, *soap.Fault) {
	p := st.l.take()
	set := &types.UpdateSet{}
	current := map[types.ManagedObjectReference]bool{}
	added := map[types.ManagedObjectReference]*filterState{}
	kept := map[*filterState]*collected{}
	recollected := 0 // counted when the round commits: a faulted round is redone whole
	for _, ref := range d.Filter {
		current[ref] = true
		f, ok := ctx.Session.Get(ref).(*simulator.PropertyFilter)
		if !ok {
			continue
		}
		fs := st.filters[ref]
		var c *collected
		var fault *soap.Fault
		if fs == nil {
			paths, kinds := traversalPaths(f.Spec)
			fs = &filterState{spec: f.Spec, travPaths: paths, travKinds: kinds, reached: map[types.ManagedObjectReference]bool{}}
			added[ref] = fs
			c, fault = d.recollect(ctx, fs, pendingSet{})
		} else if fs.structural(p) {
			recollected++
			c, fault = d.recollect(ctx, fs, p)
		} else {
			c = &collected{objs: fs.modifies(p)}
		}
		if fault != nil {
			st.l.restore(p)
			return nil, fault
		}
		if c.reached != nil {
			kept[fs] = c
		}
		if len(c.objs) > 0 || len(c.report) > 0 {
			set.FilterSet = append(set.FilterSet, types.PropertyFilterUpdate{Filter: ref, ObjectSet: c.objs, MissingSet: c.report})
		}
	}
	for fs, c := range kept {
		fs.reached, fs.missing = c.reached, c.missing
	}
	for ref, fs := range added {
		st.filters[ref] = fs
	}
	delivery.initialCollections.Add(int64(len(added)))
	delivery.recollections.Add(int64(recollected))
	for ref := range st.filters {
		if !current[ref] {
			delete(st.filters, ref) // DestroyPropertyFilter
		}
	}
	return set, nil
}

// structural reports whether p can change which objects the filter reaches.
func (fs *filterState) structural(p pendingSet) bool {
	if p.overflow {
		return true
	}
	for _, m := range p.members {
		if fs.reached[m.ref] || fs.relevant(m.types) {
			return true
		}
	}
	for _, ref := range p.order {
		for _, name := range p.objs[ref].names {
			if fs.follows(name) {
				return true
			}
		}
	}
	return false
}

// modifies are p's changes to reached objects, cut to the filter's property specs.
func (fs *filterState) modifies(p pendingSet) []types.ObjectUpdate {
	var out []types.ObjectUpdate
	for _, ref := range p.order {
		if !fs.reached[ref] {
			continue
		}
		if changes := fs.match(p.objs[ref], objectValue(ref)); len(changes) > 0 {
			out = append(out, types.ObjectUpdate{Obj: ref, Kind: types.ObjectUpdateKindModify, ChangeSet: changes})
			delivery.incrementalUpdates.Add(1)
		}
	}
	return out
}

// recollect runs the filter's spec once and diffs it with the reached set: enter for new
// objects (all their properties), p's modifies for the others, leave for the lost ones.
// compute keeps the new reached set. A root object since destroyed reaches nothing: its
// objects leave ("a managed object left the set of objects visible to a filter. For
// instance, this can happen when a virtual machine is destroyed") and the root is listed
// once in the PropertyFilterUpdate's missingSet ("objects that could not be found on the
// server, but were specified in a objectSet", only those missing since the version
// passed), where vcsim's collection answers ManagedObjectNotFound for the whole filter.
func (d *deliveryPC) recollect(ctx *simulator.Context, fs *filterState, p pendingSet) (*collected, *soap.Fault) {
	spec := fs.spec
	spec.ReportMissingObjectsInResults = types.NewBool(true)
	res := d.PropertyCollector.RetrievePropertiesEx(ctx, &types.RetrievePropertiesEx{This: d.Self, SpecSet: []types.PropertyFilterSpec{spec}})
	body := res.(*methods.RetrievePropertiesExBody)
	if body.Fault_ != nil {
		return nil, body.Fault_
	}
	c := &collected{missing: map[types.ManagedObjectReference]bool{}}
	for _, o := range spec.ObjectSet {
		if ctx.Session.Get(o.Obj) != nil || c.missing[o.Obj] {
			continue
		}
		c.missing[o.Obj] = true
		if !fs.missing[o.Obj] {
			c.report = append(c.report, types.MissingObject{Obj: o.Obj, Fault: types.LocalizedMethodFault{
				Fault:            &types.ManagedObjectNotFound{Obj: o.Obj},
				LocalizedMessage: "The object has already been deleted or has not been completely created",
			}})
		}
	}
	now := map[types.ManagedObjectReference]bool{}
	var enters []types.ObjectUpdate
	var objects []types.ObjectContent
	if body.Res.Returnval != nil {
		objects = body.Res.Returnval.Objects
	}
	for _, oc := range objects {
		if gone(oc) {
			continue
		}
		now[oc.Obj] = true
		if fs.reached[oc.Obj] {
			continue
		}
		ou := types.ObjectUpdate{Obj: oc.Obj, Kind: types.ObjectUpdateKindEnter}
		for _, prop := range oc.PropSet {
			ou.ChangeSet = append(ou.ChangeSet, types.PropertyChange{Name: prop.Name, Op: types.PropertyChangeOpAssign, Val: prop.Val})
		}
		for _, path := range missingPaths(fs.spec, typeNames(oc.Obj, simulator.Map.Get(oc.Obj)), oc) {
			ou.ChangeSet = append(ou.ChangeSet, types.PropertyChange{Name: path, Op: types.PropertyChangeOpAssign})
		}
		enters = append(enters, ou)
	}
	out := enters
	for _, ou := range fs.modifies(p) {
		if now[ou.Obj] {
			out = append(out, ou)
		}
	}
	for ref := range fs.reached {
		if !now[ref] {
			out = append(out, types.ObjectUpdate{Obj: ref, Kind: types.ObjectUpdateKindLeave})
		}
	}
	c.objs, c.reached = out, now
	return c, nil
}

// gone reports a missing object as a collection with reportMissingObjectsInResults may
// list it (vcsim 0.24 leaves it out; vCenter lists it with ManagedObjectNotFound).
func gone(oc types.ObjectContent) bool {
	for _, m := range oc.MissingSet {
		if _, ok := m.Fault.Fault.(*types.ManagedObjectNotFound); ok {
			return true
		}
	}
	return false
}
