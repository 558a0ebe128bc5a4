package main

// Hardware, datastores and networks, as vCenter keeps them.
//
// * A VM registered again from its .vmx keeps its hardware: vCenter reads the .vmx, vcsim
//   creates a default VM (1 vCPU, 32 MiB, no devices). The simulator remembers the VM's
//   config when it is unregistered (config.hardware with every device, uuid, instanceUuid,
//   guestId, datastores, networks), keyed by its .vmx path, and gives it back to the VM
//   registered from that path.
// * Datastores and networks only some hosts see: POST /api/v1/hosts/{name}/mounts sets
//   which of the datacenter's datastores and networks the host has (host.datastore,
//   host.network, each datastore's host mounts, each network's hosts). With -strict,
//   RegisterVM_Task onto a host that does not mount the .vmx's datastore fails with
//   InvalidDatastore, and PowerOnVM_Task of a VM whose datastores or networks its host
//   lacks fails (InvalidDatastore / NotFound), as on vCenter.

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type savedVM struct {
	hardware     types.VirtualHardware
	uuid         string
	instanceUuid string
	guestID      string
	guestName    string
	datastores   []types.ManagedObjectReference
	networks     []types.ManagedObjectReference
}

var savedVMs = struct {
	sync.Mutex
	byVmx map[string]*savedVM
}{byVmx: map[string]*savedVM{}}

// saveHardware remembers a VM's config before UnregisterVM removes it.
func (s *sim) saveHardware(r types.ManagedObjectReference) {
	vm, ok := simulator.Map.Get(r).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	simulator.Map.WithLock(vm, func() {
		if vm.Config == nil || vm.Config.Files.VmPathName == "" {
			return
		}
		hw := vm.Config.Hardware
		hw.Device = append([]types.BaseVirtualDevice(nil), hw.Device...)
		saved := &savedVM{
			hardware:     hw,
			uuid:         vm.Config.Uuid,
			instanceUuid: vm.Config.InstanceUuid,
			guestID:      vm.Config.GuestId,
			guestName:    vm.Config.GuestFullName,
			datastores:   append([]types.ManagedObjectReference(nil), vm.Datastore...),
			networks:     append([]types.ManagedObjectReference(nil), vm.Network...),
		}
		savedVMs.Lock()
		savedVMs.byVmx[vm.Config.Files.VmPathName] = saved
		savedVMs.Unlock()
	})
}

// restoreHardware gives a VM registered from a remembered .vmx its config back. Caller
// holds the VM's lock; the changes are applied (and announced) by the caller.
func restoreHardware(vm *simulator.VirtualMachine) []types.PropertyChange {
	if vm.Config == nil {
		return nil
	}
	savedVMs.Lock()
	saved := savedVMs.byVmx[vm.Config.Files.VmPathName]
	delete(savedVMs.byVmx, vm.Config.Files.VmPathName)
	savedVMs.Unlock()
	if saved == nil {
		return nil
	}
	hw := saved.hardware
	return []types.PropertyChange{
		{Name: "config.hardware", Val: hw},
		{Name: "config.uuid", Val: saved.uuid},
		{Name: "config.instanceUuid", Val: saved.instanceUuid},
		{Name: "config.guestId", Val: saved.guestID},
		{Name: "config.guestFullName", Val: saved.guestName},
		{Name: "summary.config.numCpu", Val: hw.NumCPU},
		{Name: "summary.config.memorySizeMB", Val: hw.MemoryMB},
		{Name: "summary.config.numEthernetCards", Val: int32(len(saved.networks))},
		{Name: "summary.config.uuid", Val: saved.uuid},
		{Name: "summary.config.instanceUuid", Val: saved.instanceUuid},
		{Name: "summary.config.guestId", Val: saved.guestID},
		{Name: "datastore", Val: saved.datastores},
		{Name: "network", Val: saved.networks},
	}
}

// ---- mounts API --------------------------------------------------------------------------

var mountKeys = []string{"datastores", "networks"}

// postMounts sets exactly which of its datacenter's datastores and networks a host has.
func (s *sim) postMounts(r *http.Request, name string) (int, interface{}, *apiError) {
	body, err := readObject(r)
	if err != nil {
		return 0, nil, err
	}
	want := map[string][]string{}
	for k, raw := range body {
		if k != "datastores" && k != "networks" {
			return 0, nil, unknownKey(k, mountKeys)
		}
		var names []string
		if e := json.Unmarshal(raw, &names); e != nil {
			return 0, nil, errf(http.StatusBadRequest, "%s: expected a list of names", k)
		}
		want[k] = names
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.lookupHost(name)
	if err != nil {
		return 0, nil, err
	}
	dc, ok := simulator.Map.Get(h.dc.ref).(*simulator.Datacenter)
	if !ok {
		return 0, nil, errf(http.StatusInternalServerError, "datacenter of %s not found", name)
	}
	pick := func(kind string, all []types.ManagedObjectReference) ([]types.ManagedObjectReference, *apiError) {
		byName := map[string]types.ManagedObjectReference{}
		for _, ref := range all {
			if e, ok := simulator.Map.Get(ref).(mo.Entity); ok {
				byName[e.Entity().Name] = ref
			}
		}
		var out []types.ManagedObjectReference
		for _, n := range want[kind] {
			ref, ok := byName[n]
			if !ok {
				return nil, errf(http.StatusNotFound, "%s: no %s named %q in %s", kind, strings.TrimSuffix(kind, "s"), n, h.dc.name)
			}
			out = append(out, ref)
		}
		return out, nil
	}
	if names, ok := want["datastores"]; ok {
		refs, e := pick("datastores", dc.Datastore)
		if e != nil {
			return 0, nil, e
		}
		_ = names
		s.setDatastoreMounts(h, dc.Datastore, refs)
	}
	if _, ok := want["networks"]; ok {
		refs, e := pick("networks", dc.Network)
		if e != nil {
			return 0, nil, e
		}
		s.setNetworks(h, dc.Network, refs)
	}
	return http.StatusOK, s.mountsJSON(h), nil
}

func refIn(r types.ManagedObjectReference, refs []types.ManagedObjectReference) bool {
	for _, x := range refs {
		if x == r {
			return true
		}
	}
	return false
}

func (s *sim) setDatastoreMounts(h *hostInfo, all, mounted []types.ManagedObjectReference) {
	simulator.Map.WithLock(h.obj, func() {
		simulator.Map.Update(h.obj, []types.PropertyChange{{Name: "datastore", Val: mounted}})
	})
	for _, ref := range all {
		ds, ok := simulator.Map.Get(ref).(*simulator.Datastore)
		if !ok {
			continue
		}
		simulator.Map.WithLock(ds, func() {
			var mounts []types.DatastoreHostMount
			for _, m := range ds.Host {
				if m.Key != h.ref {
					mounts = append(mounts, m)
				}
			}
			if refIn(ref, mounted) {
				mounts = append(mounts, types.DatastoreHostMount{
					Key: h.ref,
					MountInfo: types.HostMountInfo{
						AccessMode: string(types.HostMountModeReadWrite),
						Mounted:    types.NewBool(true),
						Accessible: types.NewBool(true),
					},
				})
			}
			simulator.Map.Update(ds, []types.PropertyChange{{Name: "host", Val: mounts}})
		})
	}
}

func (s *sim) setNetworks(h *hostInfo, all, present []types.ManagedObjectReference) {
	simulator.Map.WithLock(h.obj, func() {
		simulator.Map.Update(h.obj, []types.PropertyChange{{Name: "network", Val: present}})
	})
	for _, ref := range all {
		obj := simulator.Map.Get(ref)
		net, ok := obj.(*mo.Network)
		if !ok {
			continue
		}
		simulator.Map.WithLock(net, func() {
			var hosts []types.ManagedObjectReference
			for _, x := range net.Host {
				if x != h.ref {
					hosts = append(hosts, x)
				}
			}
			if refIn(ref, present) {
				hosts = append(hosts, h.ref)
			}
			simulator.Map.Update(net, []types.PropertyChange{{Name: "host", Val: hosts}})
		})
	}
}

func (s *sim) mountsJSON(h *hostInfo) map[string][]string {
	out := map[string][]string{"datastores": {}, "networks": {}}
	simulator.Map.WithLock(h.obj, func() {
		for _, ref := range h.obj.Datastore {
			if e, ok := simulator.Map.Get(ref).(mo.Entity); ok {
				out["datastores"] = append(out["datastores"], e.Entity().Name)
			}
		}
		for _, ref := range h.obj.Network {
			if e, ok := simulator.Map.Get(ref).(mo.Entity); ok {
				out["networks"] = append(out["networks"], e.Entity().Name)
			}
		}
	})
	return out
}

// ---- strict checks -----------------------------------------------------------------------

// hostMounts lists what a host has, for the strict checks.
func hostMounts(h types.ManagedObjectReference) (ds, nets []types.ManagedObjectReference, ok bool) {
	hs, found := simulator.Map.Get(h).(*simulator.HostSystem)
	if !found {
		return nil, nil, false
	}
	simulator.Map.WithLock(hs, func() {
		ds = append(ds, hs.Datastore...)
		nets = append(nets, hs.Network...)
	})
	return ds, nets, true
}

func datastoreNamed(name string, refs []types.ManagedObjectReference) bool {
	for _, r := range refs {
		if e, ok := simulator.Map.Get(r).(mo.Entity); ok && e.Entity().Name == name {
			return true
		}
	}
	return false
}

// registerCheck: the target host must mount the datastore holding the .vmx.
func registerCheck(req *types.RegisterVM_Task) types.BaseMethodFault {
	if req.Host == nil || !strings.HasPrefix(req.Path, "[") {
		return nil
	}
	name := req.Path[1:strings.Index(req.Path, "]")]
	ds, _, ok := hostMounts(*req.Host)
	if !ok || datastoreNamed(name, ds) {
		return nil
	}
	return &types.InvalidDatastore{Name: name}
}

// powerOnCheck: a VM's host must have every datastore and network of the VM.
func powerOnCheck(vmRef types.ManagedObjectReference) types.BaseMethodFault {
	vm, ok := simulator.Map.Get(vmRef).(*simulator.VirtualMachine)
	if !ok {
		return nil
	}
	var host *types.ManagedObjectReference
	var vds, vnets []types.ManagedObjectReference
	simulator.Map.WithLock(vm, func() {
		host = vm.Runtime.Host
		vds = append(vds, vm.Datastore...)
		vnets = append(vnets, vm.Network...)
	})
	if host == nil {
		return nil
	}
	if f := lockCheck(vm, *host); f != nil {
		return f
	}
	ds, nets, ok := hostMounts(*host)
	if !ok {
		return nil
	}
	for _, d := range vds {
		if !refIn(d, ds) {
			return &types.InvalidDatastore{Datastore: &d}
		}
	}
	for _, n := range vnets {
		if !refIn(n, nets) {
			return &types.NotFound{}
		}
	}
	return nil
}
