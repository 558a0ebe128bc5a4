package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

var vimTypes = types.TypeFunc()

// faultRule is one injected fault: the next Count calls of Method (on Object, if set) fail.
type faultRule struct {
	ID      int     `json:"id"`
	Method  string  `json:"method"`
	Object  *string `json:"object"`
	Fault   string  `json:"fault"`
	Count   int     `json:"count"` // calls left; -1 = until cleared
	Mode    string  `json:"mode"`  // "fault": SOAP fault; "task": a task that fails
	Message string  `json:"message"`
	Fired   int     `json:"fired"`

	objRef *types.ManagedObjectReference
}

type faultTable struct {
	mu     sync.Mutex
	nextID int
	rules  []*faultRule
}

func newFaultTable() *faultTable { return &faultTable{nextID: 1} }

func (t *faultTable) add(r *faultRule) faultRule {
	t.mu.Lock()
	defer t.mu.Unlock()
	r.ID = t.nextID
	t.nextID++
	t.rules = append(t.rules, r)
	return *r
}

func (t *faultTable) list() []faultRule {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]faultRule, 0, len(t.rules))
	for _, r := range t.rules {
		out = append(out, *r)
	}
	return out
}

func (t *faultTable) clear() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.rules)
	t.rules = nil
	return n
}

func (t *faultTable) hasMethod(method string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.rules {
		if r.Method == method {
			return true
		}
	}
	return false
}

// take consumes one call of the first rule matching method and one of the objects.
func (t *faultTable) take(method string, objects []types.ManagedObjectReference) *faultRule {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, r := range t.rules {
		if r.Method != method {
			continue
		}
		if r.objRef != nil {
			hit := false
			for _, o := range objects {
				if o == *r.objRef {
					hit = true
					break
				}
			}
			if !hit {
				continue
			}
		}
		r.Fired++
		if r.Count > 0 {
			r.Count--
			if r.Count == 0 {
				t.rules = append(t.rules[:i], t.rules[i+1:]...)
			}
		}
		c := *r
		return &c
	}
	return nil
}

// newFault instantiates a vSphere fault type by name (any type implementing MethodFault).
func newFault(name string) (types.BaseMethodFault, bool) {
	typ, ok := vimTypes(name)
	if !ok || typ.Kind() != reflect.Struct {
		return nil, false
	}
	f, ok := reflect.New(typ).Interface().(types.BaseMethodFault)
	return f, ok
}

func isMethod(name string) bool {
	typ, ok := vimTypes(name)
	if !ok || typ.Kind() != reflect.Struct {
		return false
	}
	f, ok := typ.FieldByName("This")
	return ok && f.Type == reflect.TypeOf(types.ManagedObjectReference{})
}

var faultMessages = map[string]string{
	"HostNotConnected":           "The operation is not allowed in the current connection state of the host.",
	"InvalidHostState":           "The operation is not allowed in the current state of the host.",
	"InvalidState":               "The operation is not allowed in the current state.",
	"TaskInProgress":             "Another task is already in progress.",
	"NotSupported":               "The operation is not supported on the object.",
	"InvalidPowerState":          "The attempted operation cannot be performed in the current state.",
	"ToolsUnavailable":           "Cannot complete operation because VMware Tools is not running in this virtual machine.",
	"HostCommunication":          "An error occurred while communicating with the remote host.",
	"NotAuthenticated":           "The session is not authenticated.",
	"InsufficientResourcesFault": "Insufficient resources to satisfy configured failover level for vSphere HA.",
}

func faultMessage(name, custom string) string {
	if custom != "" {
		return custom
	}
	if m, ok := faultMessages[name]; ok {
		return m
	}
	return "vha-sim injected fault: " + name
}

// buildFault creates the named fault and fills in the references it carries.
func buildFault(name string, this types.ManagedObjectReference, host *types.ManagedObjectReference) types.BaseMethodFault {
	f, ok := newFault(name)
	if !ok {
		f = &types.SystemError{Reason: "unknown fault " + name}
	}
	v := reflect.ValueOf(f).Elem()
	setRef := func(field string, r *types.ManagedObjectReference) {
		if r == nil {
			return
		}
		fv := v.FieldByName(field)
		if !fv.IsValid() || !fv.CanSet() {
			return
		}
		switch fv.Type() {
		case reflect.TypeOf(&types.ManagedObjectReference{}):
			c := *r
			fv.Set(reflect.ValueOf(&c))
		case reflect.TypeOf(types.ManagedObjectReference{}):
			fv.Set(reflect.ValueOf(*r))
		}
	}
	setRef("Host", host)
	setRef("Obj", &this)    // ManagedObjectNotFound
	setRef("Object", &this) // NoPermission and friends
	switch x := f.(type) {
	case *types.TaskInProgress:
		// point at a real task that never finishes
		t := simulator.CreateTask(this, "busyTask", nil)
		x.Task = t.Self
	case *types.InvalidPowerState:
		if vm, ok := simulator.Map.Get(this).(*simulator.VirtualMachine); ok {
			simulator.Map.WithLock(vm, func() { x.ExistingState = vm.Runtime.PowerState })
		}
	case *types.NoPermission:
		x.PrivilegeId = "System.View"
	}
	return f
}

// ---- SOAP encoding ---------------------------------------------------------------------

const envelopeStart = xml.Header + `<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/"` +
	` xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"` +
	` xmlns:xsd="http://www.w3.org/2001/XMLSchema"` +
	` xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>`

const envelopeEnd = `</soapenv:Body></soapenv:Envelope>`

// faultDetail marshals a fault as <{Type}Fault xmlns="urn:vim25" xsi:type="{Type}">, the
// shape vCenter uses and pyvmomi/govmomi map back to the fault class.
type faultDetail struct{ fault types.BaseMethodFault }

func (d faultDetail) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	kind := reflect.TypeOf(d.fault).Elem().Name()
	start.Name = xml.Name{Local: kind + "Fault"}
	start.Attr = []xml.Attr{
		{Name: xml.Name{Local: "xmlns"}, Value: "urn:vim25"},
		{Name: xml.Name{Local: "xsi:type"}, Value: kind},
	}
	return e.EncodeElement(d.fault, start)
}

func writeSOAPFault(w http.ResponseWriter, msg string, f types.BaseMethodFault) {
	var buf bytes.Buffer
	buf.WriteString(envelopeStart)
	buf.WriteString(`<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>`)
	_ = xml.EscapeText(&buf, []byte(msg))
	buf.WriteString(`</faultstring><detail>`)
	enc := xml.NewEncoder(&buf)
	if err := enc.Encode(faultDetail{f}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_ = enc.Flush()
	buf.WriteString(`</detail></soapenv:Fault>`)
	buf.WriteString(envelopeEnd)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write(buf.Bytes())
}

// writeFailedTask creates a Task on "this" that has already failed with f, as vCenter does for
// most *_Task errors, and answers the call with it.
func writeFailedTask(w http.ResponseWriter, method string, this types.ManagedObjectReference, msg string, f types.BaseMethodFault) {
	base := strings.TrimSuffix(method, "_Task")
	t := simulator.CreateTask(this, base+"Task", nil)
	id := strings.TrimSuffix(base, "VM")
	if id == "" {
		id = base
	}
	now := time.Now()
	name := entityName(this)
	simulator.Map.WithLock(t, func() {
		t.Info.DescriptionId = this.Type + "." + strings.ToLower(id[:1]) + id[1:]
		t.Info.EntityName = name
		mapUpdate(t, []types.PropertyChange{
			{Name: "info.startTime", Val: now},
			{Name: "info.completeTime", Val: now},
			{Name: "info.state", Val: types.TaskInfoStateError},
			{Name: "info.error", Val: types.LocalizedMethodFault{Fault: f, LocalizedMessage: msg}},
		})
	})
	var buf bytes.Buffer
	buf.WriteString(envelopeStart)
	fmt.Fprintf(&buf, `<%sResponse xmlns="urn:vim25"><returnval type="Task">`, method)
	_ = xml.EscapeText(&buf, []byte(t.Self.Value))
	fmt.Fprintf(&buf, `</returnval></%sResponse>`, method)
	buf.WriteString(envelopeEnd)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

func entityName(r types.ManagedObjectReference) string {
	obj := simulator.Map.Get(r)
	name := r.Value
	if e, ok := obj.(mo.Entity); ok {
		simulator.Map.WithLock(obj, func() { name = e.Entity().Name })
	}
	return name
}

// ---- fault API -------------------------------------------------------------------------

var faultKeys = []string{"method", "object", "fault", "count", "mode", "message"}

func (s *sim) postFault(r *http.Request) (int, interface{}, *apiError) {
	body, err := readObject(r)
	if err != nil {
		return 0, nil, err
	}
	rule := &faultRule{Count: 1, Mode: "fault"}
	for _, k := range sortedKeys(body) {
		raw := body[k]
		switch k {
		case "method", "fault", "mode", "message", "object":
			if k == "object" && isNull(raw) {
				continue
			}
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				return 0, nil, errf(http.StatusBadRequest, "%s: expected a string", k)
			}
			switch k {
			case "method":
				rule.Method = v
			case "fault":
				rule.Fault = v
			case "mode":
				rule.Mode = v
			case "message":
				rule.Message = v
			case "object":
				rule.Object = &v
			}
		case "count":
			var n int
			if err := json.Unmarshal(raw, &n); err != nil {
				return 0, nil, errf(http.StatusBadRequest, "count: expected an integer")
			}
			rule.Count = n
		default:
			return 0, nil, unknownKey(k, faultKeys)
		}
	}
	switch {
	case rule.Method == "":
		return 0, nil, errf(http.StatusBadRequest, "method: required (a vSphere API method name, e.g. PowerOnVM_Task)")
	case !isMethod(rule.Method):
		return 0, nil, errf(http.StatusBadRequest, "method: unknown vSphere API method %q", rule.Method)
	case rule.Fault == "":
		return 0, nil, errf(http.StatusBadRequest, "fault: required (a vSphere fault type, e.g. InvalidHostState)")
	case rule.Count == 0 || rule.Count < -1:
		return 0, nil, errf(http.StatusBadRequest, "count: must be >= 1, or -1 for every call until cleared")
	case rule.Mode != "fault" && rule.Mode != "task" && rule.Mode != "drop-session":
		return 0, nil, errf(http.StatusBadRequest, "mode: invalid value %q (allowed: fault, task, drop-session)", rule.Mode)
	case validDropSession(rule) != "":
		return 0, nil, errf(http.StatusBadRequest, "%s", validDropSession(rule))
	case rule.Mode == "task" && !strings.HasSuffix(rule.Method, "_Task"):
		return 0, nil, errf(http.StatusBadRequest, "mode: \"task\" needs a *_Task method")
	}
	if _, ok := newFault(rule.Fault); !ok {
		return 0, nil, errf(http.StatusBadRequest, "fault: unknown vSphere fault type %q", rule.Fault)
	}
	if rule.Object != nil {
		s.mu.Lock()
		objRef, ok := s.lookupEntity(*rule.Object)
		s.mu.Unlock()
		if !ok {
			return 0, nil, errf(http.StatusNotFound, "unknown object %q (a VM, host or cluster name)", *rule.Object)
		}
		rule.objRef = &objRef
	}
	return http.StatusCreated, s.faults.add(rule), nil
}

// lookupEntity resolves a VM, host or cluster name. Caller holds s.mu.
func (s *sim) lookupEntity(name string) (types.ManagedObjectReference, bool) {
	if r, ok := s.vmByName[name]; ok {
		return r, true
	}
	if h, ok := s.hostByName[name]; ok {
		return h.ref, true
	}
	if c, ok := s.clusterByName[name]; ok {
		return c.ref, true
	}
	return types.ManagedObjectReference{}, false
}
