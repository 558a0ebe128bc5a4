package main

// The change queue of one property collector served by sim/delivery.go, and the matching of
// a change against a filter's specs. See delivery.go for why.

import (
	"reflect"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// maxStructural bounds the entered/left refs a listener keeps between two waits; beyond
// it the next wait re-collects (which is what the refs are for anyway).
const maxStructural = 10000

// objChanges is the merged pending modification of one object: one entry per property
// name, the last value winning, in the order the names were first changed (vCenter sends
// one ObjectUpdate per object and update set).
type objChanges struct {
	names   []string
	changes map[string]types.PropertyChange
	types   []string // the object's type and the mo types it embeds (ManagedEntity ...)
}

// membership is an Enter or Leave seen by a listener.
type membership struct {
	ref   types.ManagedObjectReference
	types []string
}

// pendingSet is what arrived between two WaitForUpdatesEx calls.
type pendingSet struct {
	order    []types.ManagedObjectReference
	objs     map[types.ManagedObjectReference]*objChanges
	members  []membership
	overflow bool // too many Enter/Leave kept: re-collect
	filters  bool // a filter was created: its objects are due
}

func (p *pendingSet) empty() bool {
	return len(p.order) == 0 && len(p.members) == 0 && !p.overflow && !p.filters
}

// listener is the Map handler of one served collector. Registry.Update calls it with the
// changed object's lock held, so it only records; the wait loop does the work.
type listener struct {
	self      types.ManagedObjectReference // unique: Map keeps one handler per reference
	session   string
	countOnly bool // fallback collectors: count what the library will re-collect for

	mu      sync.Mutex
	pending pendingSet
	notify  chan struct{} // closed-and-replaced when something arrives

	ended   chan struct{} // closed when the session logs out
	endOnce sync.Once
}

var listenerSeq atomic.Int64

func newListener(session string, countOnly bool) *listener {
	l := &listener{session: session, countOnly: countOnly, notify: make(chan struct{}), ended: make(chan struct{})}
	l.self = types.ManagedObjectReference{Type: "PropertyCollector", Value: "vha-delivery-" + itoa(listenerSeq.Add(1))}
	l.pending = pendingSet{objs: map[types.ManagedObjectReference]*objChanges{}}
	return l
}

func (l *listener) Reference() types.ManagedObjectReference { return l.self }

// end releases the collector's parked wait for good (its session logged out).
func (l *listener) end() {
	l.endOnce.Do(func() { close(l.ended) })
}

// filterAdded wakes a parked wait for a filter created on the collector.
func (l *listener) filterAdded() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending.filters = true
	l.wake()
}

// restore puts back a taken set that could not be sent (a fault computing it), under what
// arrived since: the later value of a property wins, as in UpdateObject.
func (l *listener) restore(p pendingSet) {
	l.mu.Lock()
	defer l.mu.Unlock()
	later := l.pending
	for _, ref := range later.order {
		oc := later.objs[ref]
		into := p.objs[ref]
		if into == nil {
			p.objs[ref] = oc
			p.order = append(p.order, ref)
			continue
		}
		for _, name := range oc.names {
			if _, seen := into.changes[name]; !seen {
				into.names = append(into.names, name)
			}
			into.changes[name] = oc.changes[name]
		}
	}
	if len(p.members)+len(later.members) > maxStructural {
		p.overflow, p.members = true, nil
	} else {
		p.members = append(p.members, later.members...)
	}
	p.overflow = p.overflow || later.overflow
	p.filters = p.filters || later.filters
	l.pending = p
	if !p.empty() {
		l.wake()
	}
}

// wake tells a waiting WaitForUpdatesEx that something arrived. Callers hold l.mu.
func (l *listener) wake() {
	close(l.notify)
	l.notify = make(chan struct{})
}

func (l *listener) member(ref types.ManagedObjectReference, obj mo.Reference) {
	if l.countOnly {
		return
	}
	names := typeNames(ref, obj)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending.members) >= maxStructural {
		l.pending.overflow = true
	} else {
		l.pending.members = append(l.pending.members, membership{ref: ref, types: names})
	}
	l.wake()
}

// PutObject records an Enter (Registry.Put).
func (l *listener) PutObject(o mo.Reference) {
	if l.countOnly {
		delivery.libraryRecollections.Add(1) // the library re-collects for every Enter
		return
	}
	l.member(o.Reference(), o)
}

// RemoveObject records a Leave (Registry.Remove, called before the object is dropped).
func (l *listener) RemoveObject(ref types.ManagedObjectReference) {
	if l.countOnly {
		return
	}
	l.member(ref, simulator.Map.Get(ref))
}

// UpdateObject merges a Modify into the object's pending changes.
func (l *listener) UpdateObject(o mo.Reference, changes []types.PropertyChange) {
	if l.countOnly {
		delivery.libraryRecollections.Add(1) // ... and for every Modify
		return
	}
	ref := o.Reference()
	names := typeNames(ref, o) // cached per Go type
	l.mu.Lock()
	defer l.mu.Unlock()
	oc := l.pending.objs[ref]
	if oc == nil {
		oc = &objChanges{changes: map[string]types.PropertyChange{}, types: names}
		l.pending.objs[ref] = oc
		l.pending.order = append(l.pending.order, ref)
	}
	for _, c := range changes {
		if _, seen := oc.changes[c.Name]; !seen {
			oc.names = append(oc.names, c.Name)
		}
		oc.changes[c.Name] = c
	}
	l.wake()
}

// take hands over what is pending and starts a new set.
func (l *listener) take() pendingSet {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pending
	l.pending = pendingSet{objs: map[types.ManagedObjectReference]*objChanges{}}
	return p
}

func (l *listener) waitChan() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.pending.empty() {
		c := make(chan struct{})
		close(c)
		return c
	}
	return l.notify
}

var typeNameCache sync.Map // reflect.Type -> []string

// typeNames is the object's type and the mo types its struct embeds, the names a
// PropertySpec.type may use for it (e.g. ManagedEntity for a HostSystem).
func typeNames(ref types.ManagedObjectReference, obj mo.Reference) []string {
	if obj == nil {
		return []string{ref.Type}
	}
	rt := reflect.ValueOf(embeddedMO(obj)).Elem().Type()
	if v, ok := typeNameCache.Load(rt); ok {
		return v.([]string)
	}
	names := []string{ref.Type}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				names = append(names, f.Type.Name())
				walk(f.Type)
			}
		}
	}
	walk(rt)
	typeNameCache.Store(rt, names)
	return names
}

func hasType(names []string, t string) bool {
	for _, n := range names {
		if n == t {
			return true
		}
	}
	return false
}

// under reports whether dotted path p is q or lies below it ("runtime.x" under "runtime").
func under(p, q string) bool {
	return p == q || strings.HasPrefix(p, q+".")
}

// traversalPaths lists the paths every TraversalSpec of a filter spec follows.
func traversalPaths(spec types.PropertyFilterSpec) (paths []string, kinds []string) {
	seen := map[string]bool{}
	var walk func([]types.BaseSelectionSpec)
	walk = func(set []types.BaseSelectionSpec) {
		for _, s := range set {
			ts, ok := s.(*types.TraversalSpec)
			if !ok || seen[ts.Name+"|"+ts.Type+"|"+ts.Path] {
				continue
			}
			seen[ts.Name+"|"+ts.Type+"|"+ts.Path] = true
			paths = append(paths, ts.Path)
			kinds = append(kinds, ts.Type)
			walk(ts.SelectSet)
		}
	}
	for _, o := range spec.ObjectSet {
		walk(o.SelectSet)
	}
	return paths, kinds
}

// relevant reports whether an object of these types can be in, or lead to, a filter's
// result: a PropertySpec or a TraversalSpec names one of its types.
func (fs *filterState) relevant(names []string) bool {
	for _, p := range fs.spec.PropSet {
		if hasType(names, p.Type) {
			return true
		}
	}
	for _, k := range fs.travKinds {
		if hasType(names, k) {
			return true
		}
	}
	return false
}

// follows reports whether a change named name can change which objects the filter
// reaches (it touches a path a TraversalSpec follows).
func (fs *filterState) follows(name string) bool {
	for _, p := range fs.travPaths {
		if under(name, p) || under(p, name) {
			return true
		}
	}
	return false
}

// match cuts one object's changes to the filter's property specs, as vcsim's
// PropertyFilter.apply does, plus a parent change (a whole "runtime") cut to the nested
// paths asked for ("runtime.connectionState"), which vcsim drops. A change below a path
// asked for is sent as that path with the object's current value. current reads it.
func (fs *filterState) match(oc *objChanges, current func(path string) (interface{}, bool)) []types.PropertyChange {
	var out []types.PropertyChange
	sent := map[string]bool{}
	add := func(c types.PropertyChange) {
		if !sent[c.Name] {
			sent[c.Name] = true
			out = append(out, c)
		}
	}
	for _, name := range oc.names {
		c := oc.changes[name]
		for _, p := range fs.spec.PropSet {
			if !hasType(oc.types, p.Type) {
				continue
			}
			if isTrueBool(p.All) {
				add(c)
				continue
			}
			for _, path := range p.PathSet {
				switch {
				case path == c.Name:
					add(c)
				case under(c.Name, path): // deeper than asked: send the asked-for path
					if v, ok := current(path); ok {
						add(nestedChange(path, types.PropertyChangeOpAssign, v))
					}
				case under(path, c.Name): // a parent changed: send the nested path
					if c.Val == nil || c.Op == types.PropertyChangeOpRemove || c.Op == types.PropertyChangeOpIndirectRemove {
						add(types.PropertyChange{Name: path, Op: types.PropertyChangeOpIndirectRemove})
					} else if v, ok := subValue(c.Val, strings.TrimPrefix(path, c.Name+".")); ok {
						add(nestedChange(path, c.Op, v))
					}
				}
			}
		}
	}
	return out
}

// nestedChange is a nested path's change; an unsetParent value (a containing property
// unset) is op indirectRemove, as vCenter sends it (PropertyChange.op: "the property was
// removed because a containing property was removed or unset").
func nestedChange(path string, op types.PropertyChangeOp, v interface{}) types.PropertyChange {
	if _, ok := v.(unsetParent); ok {
		return types.PropertyChange{Name: path, Op: types.PropertyChangeOpIndirectRemove}
	}
	return types.PropertyChange{Name: path, Op: op, Val: v}
}

func isTrueBool(b *bool) bool { return b != nil && *b }
