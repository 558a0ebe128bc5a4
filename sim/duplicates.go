package main

// Registrations a failed host still holds when it comes back.
//
// UnregisterVM of a VM whose host is not connected removes the VM from vCenter's inventory
// only: the host itself never hears of it, so its hostd still has the .vmx registered.
// When the host comes back, vCenter synchronises with it (ReconnectHost "goes through many
// of the same steps as addHost", and adding a host "imports existing virtual machines"):
// every VM the host has registered and vCenter does not know becomes a new inventory
// object. For a VM that was re-registered elsewhere meanwhile, that is a second entry for
// the same .vmx: a duplicate registration. What vCenter shows then:
//
//   - a new VirtualMachine (new moid) on the returning host, same name, same .vmx path
//     (config.files.vmPathName), same hardware and BIOS uuid (read from the .vmx), in the
//     datacenter's VM folder and the host's root resource pool (vCenter's own folder,
//     pool, custom values and permissions of the old object went with UnregisterVM);
//   - powered off: the host crashed and rebooted, or (a host that was only isolated) its
//     instance lost the disk locks to the running copy and ESXi powered it off (vSphere
//     Availability, "split-brain": the instance that lost the locks is powered off). With
//     {"staleVms": "poweredOn"} the old instance still runs: a split brain a person must
//     settle;
//   - a new config.instanceUuid when the running copy has the old one: vCenter keeps
//     instance UUIDs unique and posts VmInstanceUuidConflictEvent (vm = the copy that
//     came back, conflictedVm = the running one), so the .vmx path is what ties the two;
//   - with -strict, PowerOnVM_Task of either copy fails with FileLocked while the other
//     runs on another host (the running copy holds the .vmx lock).
//
// POST /api/v1/hosts/{name}/recover takes an optional {"staleVms": "poweredOff" |
// "poweredOn" | "none"}; "none" is a host reinstalled from scratch (no registrations).

import (
	"context"
	"fmt"
	"io/ioutil"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	staleOff  = "poweredOff"
	staleOn   = "poweredOn"
	staleNone = "none"
)

var staleModes = []string{staleOff, staleOn, staleNone}

type staleReg struct {
	vmx   string
	name  string
	saved *savedVM
}

var stale = struct {
	sync.Mutex
	byHost map[types.ManagedObjectReference][]staleReg // registrations a lost host still holds
	copies map[string]types.ManagedObjectReference     // .vmx -> the copy that came back
}{byHost: map[types.ManagedObjectReference][]staleReg{}, copies: map[string]types.ManagedObjectReference{}}

// noteUnregister runs before UnregisterVM: a VM removed while its host is not connected
// stays registered on that host. saved is the config saveHardware remembered.
func noteUnregister(r types.ManagedObjectReference, saved *savedVM) {
	h := vmHostRef(r)
	vm, ok := simulator.Map.Get(r).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	var vmx, name string
	simulator.Map.WithLock(vm, func() {
		name, vmx = vm.Name, vmxOf(vm)
	})
	stale.Lock()
	defer stale.Unlock()
	if cur, ok := stale.copies[vmx]; ok && cur == r {
		delete(stale.copies, vmx) // the duplicate itself is being removed
	}
	if h == nil || vmx == "" || saved == nil {
		return
	}
	if hs, ok := hostState(h); !ok || hs.connected() {
		return // a connected host is told: nothing stays behind
	}
	stale.byHost[*h] = append(stale.byHost[*h], staleReg{vmx: vmx, name: name, saved: saved})
}

// returnStale gives a recovered host its registrations back. Caller holds s.mu.
func (s *sim) returnStale(h *hostInfo, mode string) {
	stale.Lock()
	regs := stale.byHost[h.ref]
	delete(stale.byHost, h.ref)
	stale.Unlock()
	if mode == staleNone {
		return
	}
	for _, reg := range regs {
		if err := s.registerStale(h, reg, mode); err != nil {
			logf("stale registration of %s on %s not restored: %v", reg.vmx, h.name, err)
		}
	}
	s.reconcileAllLocked()
}

// runningCopy is a VM other than self registered from vmx, and whether it is powered on.
func runningCopy(vmx string, self types.ManagedObjectReference) (types.ManagedObjectReference, types.ManagedObjectReference, bool) {
	for _, obj := range simulator.Map.All("VirtualMachine") {
		vm, ok := obj.(*simulator.VirtualMachine)
		if !ok || vm.Self == self {
			continue
		}
		var same, on bool
		var host types.ManagedObjectReference
		simulator.Map.WithLock(vm, func() {
			same = vm.Config != nil && vm.Config.Files.VmPathName == vmx
			on = vm.Runtime.PowerState == vmPoweredOn
			if vm.Runtime.Host != nil {
				host = *vm.Runtime.Host
			}
		})
		if same {
			return vm.Self, host, on
		}
	}
	return types.ManagedObjectReference{}, types.ManagedObjectReference{}, false
}

func (s *sim) registerStale(h *hostInfo, reg staleReg, mode string) error {
	folder, ok := simulator.Map.Get(h.dc.vmFolder).(*simulator.Folder)
	if !ok {
		return fmt.Errorf("no VM folder in %s", h.dc.name)
	}
	var pool *types.ManagedObjectReference
	if c := h.cluster; c != nil {
		simulator.Map.WithLock(c.obj, func() { pool = c.obj.ResourcePool })
	} else if cr, ok := simulator.Map.Get(*h.obj.Parent).(*mo.ComputeResource); ok {
		simulator.Map.WithLock(cr, func() { pool = cr.ResourcePool })
	}
	if pool == nil {
		return fmt.Errorf("no resource pool for %s", h.name)
	}
	other, _, _ := runningCopy(reg.vmx, types.ManagedObjectReference{})
	duplicate := other.Value != ""
	// vcsim refuses to register a .vmx path that is already registered (AlreadyExists), so
	// the copy is registered from a sibling of the .vmx and then given the real path.
	regPath := reg.vmx
	if duplicate {
		tmp, err := copyVmx(h, reg.vmx)
		if err != nil {
			return err
		}
		regPath = tmp.ds
		defer func() { _ = os.Remove(tmp.file) }()
	}
	ctx := &simulator.Context{Context: context.Background(), Map: simulator.Map, Session: eventSession, Caller: &folder.Self}
	req := &types.RegisterVM_Task{This: folder.Self, Path: regPath, Name: reg.name, Pool: pool, Host: &h.ref}
	var taskRef types.ManagedObjectReference
	simulator.Map.WithLock(folder, func() {
		if body, ok := folder.RegisterVMTask(ctx, req).(*methods.RegisterVM_TaskBody); ok && body.Res != nil {
			taskRef = body.Res.Returnval
		}
	})
	task, ok := simulator.Map.Get(taskRef).(*simulator.Task)
	if !ok {
		return fmt.Errorf("register task not found")
	}
	var vmRef types.ManagedObjectReference
	var fault error
	simulator.Map.WithLock(task, func() {
		if task.Info.Error != nil {
			fault = fmt.Errorf("%T", task.Info.Error.Fault)
			return
		}
		if r, ok := task.Info.Result.(types.ManagedObjectReference); ok {
			vmRef = r
		}
	})
	if fault != nil {
		return fault
	}
	vm, ok := simulator.Map.Get(vmRef).(*simulator.VirtualMachine)
	if !ok {
		return fmt.Errorf("registered VM %s not found", vmRef.Value)
	}
	saved := *reg.saved
	if duplicate {
		saved.instanceUuid = uuid.New().String() // vCenter keeps instance UUIDs unique
	}
	savedVMs.Lock()
	savedVMs.byVmx[reg.vmx] = &saved // the first reconcile gives the copy its hardware
	savedVMs.Unlock()
	now := time.Now()
	simulator.Map.WithLock(vm, func() {
		changes := []types.PropertyChange{
			{Name: "config.files.vmPathName", Val: reg.vmx},
			{Name: "summary.config.vmPathName", Val: reg.vmx},
		}
		if mode == staleOn {
			changes = append(changes,
				types.PropertyChange{Name: "runtime.powerState", Val: vmPoweredOn},
				types.PropertyChange{Name: "summary.runtime.powerState", Val: vmPoweredOn},
				types.PropertyChange{Name: "summary.runtime.bootTime", Val: &now},
			)
		}
		mapUpdate(vm, changes)
	})
	if duplicate {
		stale.Lock()
		stale.copies[reg.vmx] = vm.Self
		stale.Unlock()
		e := &types.VmInstanceUuidConflictEvent{
			VmEvent:      types.VmEvent{Event: types.Event{Datacenter: s.dcArg(h.dc), Host: s.hostArg(h), Vm: &types.VmEventArgument{Vm: vm.Self, EntityEventArgument: types.EntityEventArgument{Name: reg.name}}}},
			ConflictedVm: types.VmEventArgument{Vm: other, EntityEventArgument: types.EntityEventArgument{Name: reg.name}},
			InstanceUuid: reg.saved.instanceUuid,
		}
		e.FullFormattedMessage = fmt.Sprintf("The instance UUID of %s conflicts with %s: a new one was assigned", reg.name, other.Value)
		s.postEvents(e)
	}
	return nil
}

// duplicateLockCheck: with two registrations of one .vmx, the one powered on holds the
// lock, so the other cannot power on (FileLocked), as on vCenter.
func duplicateLockCheck(vm *simulator.VirtualMachine, host types.ManagedObjectReference) types.BaseMethodFault {
	vmx := vmxLocked(vm)
	stale.Lock()
	_, ok := stale.copies[vmx]
	stale.Unlock()
	if !ok || vmx == "" {
		return nil
	}
	if other, where, on := runningCopy(vmx, vm.Self); other.Value != "" && on && where != host {
		return &types.FileLocked{FileFault: types.FileFault{File: vmx}}
	}
	return nil
}

type vmxCopy struct{ ds, file string }

// copyVmx copies a .vmx next to itself (same directory, so the VM's nvram and log are
// found) and returns the copy's datastore path and file.
func copyVmx(h *hostInfo, vmx string) (vmxCopy, error) {
	if !strings.HasPrefix(vmx, "[") || !strings.Contains(vmx, "] ") {
		return vmxCopy{}, fmt.Errorf("not a datastore path: %s", vmx)
	}
	dsName := vmx[1:strings.Index(vmx, "]")]
	rel := vmx[strings.Index(vmx, "] ")+2:]
	dir := ""
	for _, ref := range h.obj.Datastore {
		if ds, ok := simulator.Map.Get(ref).(*simulator.Datastore); ok && ds.Name == dsName {
			dir = ds.Info.GetDatastoreInfo().Url
		}
	}
	if dir == "" {
		return vmxCopy{}, fmt.Errorf("datastore %s not found on %s", dsName, h.name)
	}
	src := path.Join(dir, rel)
	data, err := ioutil.ReadFile(src)
	if err != nil {
		return vmxCopy{}, err
	}
	name := fmt.Sprintf(".vha-stale-%d.vmx", time.Now().UnixNano())
	dst := path.Join(path.Dir(src), name)
	if err := ioutil.WriteFile(dst, data, 0o600); err != nil {
		return vmxCopy{}, err
	}
	return vmxCopy{ds: fmt.Sprintf("[%s] %s", dsName, path.Join(path.Dir(rel), name)), file: dst}, nil
}
