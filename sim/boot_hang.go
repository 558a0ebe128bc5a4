// A guest that hangs while booting: after every new boot of the VM's files its Tools never
// start, so vCenter reports guestHeartbeatStatus gray, toolsRunningStatus
// guestToolsNotRunning and guest.appHeartbeatStatus appStatusGray for as long as it runs.
// vcsim boots every guest instantly and healthy; the remediator's restart orchestration
// (a tier whose VMs never become ready starts the next one at the timeout) needs a VM that
// stays unready after the remediator itself powered it on. The mark follows the .vmx path,
// so it survives a re-registration (new moid) the way a broken guest OS on disk would.
// Set with POST /api/v1/vms/{name} {"hangOnBoot": true}; see docs/simulator.md.
package main

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

var bootHangs = struct {
	sync.Mutex
	byVmx map[string]bool
}{byVmx: map[string]bool{}}

// vmxOf is the VM's .vmx datastore path ("" without a config). Caller holds the VM's lock.
func vmxOf(vm *simulator.VirtualMachine) string {
	if vm.Config == nil {
		return ""
	}
	return vm.Config.Files.VmPathName
}

// vmxLocked is vmxOf for a caller that does not hold the VM's lock: it takes it.
func vmxLocked(vm *simulator.VirtualMachine) string {
	var vmx string
	simulator.Map.WithLock(vm, func() { vmx = vmxOf(vm) })
	return vmx
}

// bootOverrides is the guest state a new boot of this VM comes up with. Caller holds the
// VM's lock.
func bootOverrides(vm *simulator.VirtualMachine) overrides {
	bootHangs.Lock()
	hang := bootHangs.byVmx[vmxOf(vm)]
	bootHangs.Unlock()
	if !hang {
		return overrides{}
	}
	return overrides{
		guestHeartbeat: types.ManagedEntityStatusGray,
		toolsRunning:   toolsNotRunning,
		appHeartbeat:   appGray,
	}
}

// setBootHang marks (or clears) the VM's files as a guest that hangs on boot.
func setBootHang(t *vmTrack, raw json.RawMessage) *apiError {
	var on bool
	if err := json.Unmarshal(raw, &on); err != nil {
		return errf(http.StatusBadRequest, "hangOnBoot must be true or false")
	}
	vmx := vmxLocked(t.obj)
	if vmx == "" {
		return errf(http.StatusConflict, "vm %q has no .vmx path", t.name)
	}
	bootHangs.Lock()
	defer bootHangs.Unlock()
	if on {
		bootHangs.byVmx[vmx] = true
	} else {
		delete(bootHangs.byVmx, vmx)
	}
	return nil
}

func bootHangOf(t *vmTrack) bool {
	vmx := vmxLocked(t.obj)
	bootHangs.Lock()
	defer bootHangs.Unlock()
	return bootHangs.byVmx[vmx]
}
