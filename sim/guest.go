// Guest details vcsim leaves empty or uniform: guest filesystems (guest.disk, reported by
// VMware Tools) and a spread of Tools version states. Every sixth VM runs an older Tools
// (guestToolsNeedUpgrade, version 11365); every VM has "/" (40 GiB) and "/var" (20 GiB).
// A fault API sets a VM's Tools version state and filesystems. See docs/simulator.md.
package main

import (
	"encoding/json"
	"net/http"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	oldToolsVersion = "11365"
	gib             = int64(1) << 30
)

var toolsVersionStatuses = []string{
	"guestToolsNotInstalled", "guestToolsNeedUpgrade", "guestToolsCurrent", "guestToolsUnmanaged",
	"guestToolsTooOld", "guestToolsSupportedOld", "guestToolsSupportedNew", "guestToolsTooNew",
	"guestToolsBlacklisted",
}

type guestDisk struct {
	Path     string `json:"path"`
	Capacity int64  `json:"capacity"`
	Free     int64  `json:"free"`
}

func diskInfo(disks []guestDisk) []types.GuestDiskInfo {
	out := make([]types.GuestDiskInfo, 0, len(disks))
	for _, d := range disks {
		out = append(out, types.GuestDiskInfo{DiskPath: d.Path, Capacity: d.Capacity, FreeSpace: d.Free, FilesystemType: "ext4"})
	}
	return out
}

// initGuests gives the initial VMs their filesystems and some an older Tools.
func (s *sim) initGuests() {
	for i, t := range s.vmList {
		vm := t.obj
		simulator.Map.WithLock(vm, func() {
			if vm.Guest == nil {
				return
			}
			vm.Guest.Disk = diskInfo([]guestDisk{
				{"/", 40 * gib, 28 * gib}, {"/var", 20 * gib, 15 * gib},
			})
			if i%6 == 5 {
				status := "guestToolsNeedUpgrade"
				vm.Guest.ToolsVersion = oldToolsVersion
				vm.Guest.ToolsVersionStatus = status
				vm.Guest.ToolsVersionStatus2 = status
				vm.Summary.Guest.ToolsVersionStatus = status
				vm.Summary.Guest.ToolsVersionStatus2 = status
			}
		})
	}
}

func guestJSON(vm *simulator.VirtualMachine) map[string]interface{} {
	disks := []guestDisk{}
	if vm.Guest != nil {
		for _, d := range vm.Guest.Disk {
			disks = append(disks, guestDisk{d.DiskPath, d.Capacity, d.FreeSpace})
		}
		return map[string]interface{}{
			"toolsVersion": vm.Guest.ToolsVersion, "toolsVersionStatus2": vm.Guest.ToolsVersionStatus2, "disks": disks,
		}
	}
	return map[string]interface{}{"disks": disks}
}

// routeGuest serves GET|POST /api/v1/guest/{vm}.
func (s *sim) routeGuest(r *http.Request, parts []string) (int, interface{}, *apiError) {
	if len(parts) != 1 {
		return 0, nil, errf(http.StatusNotFound, "no such endpoint: %s", r.URL.Path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, aerr := s.lookupVM(parts[0])
	if aerr != nil {
		return 0, nil, aerr
	}
	vm := t.obj
	return serveState(r, func() interface{} {
		var out map[string]interface{}
		simulator.Map.WithLock(vm, func() { out = guestJSON(vm) })
		return out
	}, func(body map[string]json.RawMessage) (interface{}, *apiError) { return setGuest(vm, body) })
}

// setGuest applies a POST's guest changes (checked first, then all at once).
func setGuest(vm *simulator.VirtualMachine, body map[string]json.RawMessage) (interface{}, *apiError) {
	var aerr *apiError
	var out map[string]interface{}
	allowed := []string{"toolsVersionStatus2", "toolsVersion", "disks"}
	var status, version string
	var disks []guestDisk
	setDisks := false
	for _, k := range sortedKeys(body) {
		switch k {
		case "toolsVersionStatus2":
			if status, aerr = enumValue(k, body[k], toolsVersionStatuses); aerr != nil {
				return nil, aerr
			}
		case "toolsVersion":
			if err := json.Unmarshal(body[k], &version); err != nil {
				return nil, errf(http.StatusBadRequest, "toolsVersion: expected a string")
			}
		case "disks":
			if err := json.Unmarshal(body[k], &disks); err != nil {
				return nil, errf(http.StatusBadRequest, "disks: expected [{path, capacity, free}]")
			}
			for _, d := range disks {
				if d.Path == "" || d.Capacity < 0 || d.Free < 0 || d.Free > d.Capacity {
					return nil, errf(http.StatusBadRequest, "disks: each needs a path and 0 <= free <= capacity")
				}
			}
			setDisks = true
		default:
			return nil, unknownKey(k, allowed)
		}
	}
	simulator.Map.WithLock(vm, func() {
		if vm.Guest == nil {
			vm.Guest = &types.GuestInfo{}
		}
		var changes []types.PropertyChange
		if status != "" {
			vm.Guest.ToolsVersionStatus2 = status
			changes = append(changes, types.PropertyChange{Name: "guest.toolsVersionStatus2", Val: status},
				types.PropertyChange{Name: "summary.guest.toolsVersionStatus2", Val: status})
		}
		if version != "" {
			vm.Guest.ToolsVersion = version
			changes = append(changes, types.PropertyChange{Name: "guest.toolsVersion", Val: version})
		}
		if setDisks {
			vm.Guest.Disk = diskInfo(disks)
			changes = append(changes, types.PropertyChange{Name: "guest.disk", Val: vm.Guest.Disk})
		}
		if len(changes) > 0 {
			simulator.Map.Update(vm, changes)
		}
		out = guestJSON(vm)
	})
	return out, nil
}
