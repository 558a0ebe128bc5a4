package main

// VMFS locks held by a host vCenter has lost. A host can lose its management network (and
// HA can declare it dead) while its VMs keep running on shared storage: their processes
// still hold the on-disk locks of their files. vCenter lets the VM be unregistered and
// registered elsewhere, but powering the new registration on fails with FileLocked until
// the old host lets go (its isolation response powers the VM off, it is fenced, or it
// dies and the lock lease expires).
//
// POST /api/v1/hosts/{name}/locks {"held": true} marks the files of the VMs on the host
// now as locked by it; {"held": false} releases them (recovering the host does too).
// With -strict, PowerOnVM_Task of a VM whose .vmx is locked by another host fails with
// FileLocked.

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

var fileLocks = struct {
	sync.Mutex
	byVmx map[string]types.ManagedObjectReference // .vmx path -> host holding its lock
}{byVmx: map[string]types.ManagedObjectReference{}}

func (s *sim) postLocks(r *http.Request, name string) (int, interface{}, *apiError) {
	body, err := readObject(r)
	if err != nil {
		return 0, nil, err
	}
	var held bool
	for k, raw := range body {
		if k != "held" {
			return 0, nil, unknownKey(k, []string{"held"})
		}
		if e := json.Unmarshal(raw, &held); e != nil {
			return 0, nil, errf(http.StatusBadRequest, "held: expected a boolean")
		}
	}
	if _, ok := body["held"]; !ok {
		return 0, nil, errf(http.StatusBadRequest, "held: required (true or false)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.lookupHost(name)
	if err != nil {
		return 0, nil, err
	}
	var locked []string
	if held {
		for _, t := range s.vmList {
			if t.host != h.ref || t.vmx == "" {
				continue
			}
			locked = append(locked, t.vmx)
		}
		fileLocks.Lock()
		for _, vmx := range locked {
			fileLocks.byVmx[vmx] = h.ref
		}
		fileLocks.Unlock()
	} else {
		releaseLocks(h.ref)
	}
	return http.StatusOK, map[string]interface{}{"host": name, "held": held, "files": locked}, nil
}

// releaseLocks drops every lock a host holds (it recovered, or let go).
func releaseLocks(h types.ManagedObjectReference) {
	fileLocks.Lock()
	defer fileLocks.Unlock()
	for vmx, holder := range fileLocks.byVmx {
		if holder == h {
			delete(fileLocks.byVmx, vmx)
		}
	}
}

// lockCheck: a VM whose files another host holds locked cannot power on.
func lockCheck(vm *simulator.VirtualMachine, host types.ManagedObjectReference) types.BaseMethodFault {
	vmx := vmxLocked(vm)
	fileLocks.Lock()
	holder, locked := fileLocks.byVmx[vmx]
	fileLocks.Unlock()
	if !locked || holder == host {
		return duplicateLockCheck(vm, host) // two registrations of one .vmx (duplicates.go)
	}
	return &types.FileLocked{FileFault: types.FileFault{File: vmx}}
}
