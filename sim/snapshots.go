package main

// Snapshot files as vCenter reports them in VirtualMachine.layoutEx.
//
// vcsim's CreateSnapshot_Task writes an empty .vmsn (snapshotData, size 0) and no delta
// disks: the disks' chains never grow and the space a snapshot holds is always 0. On vCenter
// a snapshot adds, per virtual disk, a delta disk (descriptor + extent) that takes every
// later write, appended to layoutEx.disk[].chain (the snapshot's own layoutEx.snapshot[].disk
// keeps the chain as it was when it was taken), a .vmsn with the VM's state and, for a
// memory snapshot of a powered-on VM, a .vmem (snapshotMemory) the size of its memory.
//
// After vcsim's task this file gives the .vmsn snapshotDataBytes, adds the .vmem, and adds a
// delta descriptor (deltaDescriptorBytes) and extent (deltaExtentBytes) per disk, as real
// sparse files in the VM's directory (vcsim's RefreshStorageInfo drops layout entries whose
// file is missing). Removing a snapshot removes the delta created when it was taken (on
// vCenter its data is merged into the parent disk). vcsim recomputes layoutEx.disk from the
// device backings on reconfigure and storage refresh; the deltas are appended again after
// every call on the VM. layoutEx is a "might not generate property collector update
// notifications" property: in real-vCenter mode its changes are applied silently.

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	snapshotDataBytes    = 32 * 1024
	deltaDescriptorBytes = 512
	deltaExtentBytes     = 64 * 1024 * 1024
)

// snapDelta is one delta disk the simulator added for a snapshot.
type snapDelta struct {
	snapshot types.ManagedObjectReference
	diskKey  int32
	files    []string // datastore paths: descriptor, extent
}

// snapDeltas: VM -> the deltas of its snapshots, oldest first. Guarded by sim.mu.
var snapDeltas = map[types.ManagedObjectReference][]snapDelta{}

// savedLayout copies vm's layoutEx before a call that lets vcsim refresh its storage
// information (RemoveSnapshot_Task, RemoveAllSnapshots_Task, RefreshStorageInfo): vcsim's
// RefreshStorageInfo drops every layoutEx.file entry and adds the files it finds back under
// new keys and other names, leaving the snapshots' dataKey and disk chains pointing at keys
// that no longer exist. vCenter keeps them consistent, so the layout from before the call
// is restored, less the files of the snapshots the call removed.
func savedLayout(vmRef types.ManagedObjectReference) *types.VirtualMachineFileLayoutEx {
	vm, ok := simulator.Map.Get(vmRef).(*simulator.VirtualMachine)
	if !ok {
		return nil
	}
	var out *types.VirtualMachineFileLayoutEx
	simulator.Map.WithLock(vm, func() {
		if vm.LayoutEx == nil || len(vm.LayoutEx.Snapshot) == 0 {
			return
		}
		c := *vm.LayoutEx
		c.File = append([]types.VirtualMachineFileLayoutExFileInfo(nil), vm.LayoutEx.File...)
		c.Disk = append([]types.VirtualMachineFileLayoutExDiskLayout(nil), vm.LayoutEx.Disk...)
		c.Snapshot = append([]types.VirtualMachineFileLayoutExSnapshotLayout(nil), vm.LayoutEx.Snapshot...)
		out = &c
	})
	return out
}

// refreshesStorage: the VM methods after which savedLayout is restored.
var refreshesStorage = map[string]bool{"RemoveAllSnapshots_Task": true, "RefreshStorageInfo": true}

// localPath maps "[ds] dir/file" to the file on the simulator's disk.
func localPath(vm *simulator.VirtualMachine, name string) (string, bool) {
	var p object.DatastorePath
	if !p.FromString(name) {
		return "", false
	}
	for _, ref := range vm.Datastore {
		if ds, ok := simulator.Map.Get(ref).(*simulator.Datastore); ok && ds.Name == p.Datastore {
			return path.Join(ds.Info.GetDatastoreInfo().Url, p.Path), true
		}
	}
	return "", false
}

// sparseFile creates (or resizes) a sparse file of size bytes.
func sparseFile(local string, size int64) bool {
	f, err := os.OpenFile(local, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Truncate(size) == nil
}

func nextFileKey(vm *simulator.VirtualMachine) int32 {
	var k int32
	for _, f := range vm.LayoutEx.File {
		if f.Key >= k {
			k = f.Key + 1
		}
	}
	return k
}

func addLayoutFile(vm *simulator.VirtualMachine, name, kind string, size int64) int32 {
	for _, f := range vm.LayoutEx.File {
		if f.Name == name {
			return f.Key
		}
	}
	key := nextFileKey(vm)
	vm.LayoutEx.File = append(vm.LayoutEx.File, types.VirtualMachineFileLayoutExFileInfo{
		Key: key, Name: name, Type: kind, Size: size, UniqueSize: size, Accessible: types.NewBool(true),
	})
	return key
}

func snapshotExists(tree []types.VirtualMachineSnapshotTree, ref types.ManagedObjectReference) bool {
	for _, t := range tree {
		if t.Snapshot == ref || snapshotExists(t.ChildSnapshotList, ref) {
			return true
		}
	}
	return false
}

// snapshotVM is the VM of a call on one of its snapshots (RemoveSnapshot_Task, ...).
func snapshotVM(m *simulator.Method) (types.ManagedObjectReference, bool) {
	if m.This.Type != "VirtualMachineSnapshot" {
		return types.ManagedObjectReference{}, false
	}
	snap, ok := simulator.Map.Get(m.This).(*simulator.VirtualMachineSnapshot)
	if !ok {
		return types.ManagedObjectReference{}, false
	}
	return snap.Vm, true
}

var taskReturnval = regexp.MustCompile(`<returnval type="Task">([^<]+)</returnval>`)

// taskOnVM makes the task a call on a snapshot returned name the snapshot's VM as its entity:
// TaskInfo.entity is a ManagedEntity (clients such as pyVmomi refuse a VirtualMachineSnapshot
// there), and vCenter reports the VM; vcsim puts the snapshot.
func taskOnVM(body []byte, vmRef types.ManagedObjectReference) {
	found := taskReturnval.FindSubmatch(body)
	if found == nil {
		return
	}
	ref := types.ManagedObjectReference{Type: "Task", Value: string(found[1])}
	task, ok := simulator.Map.Get(ref).(*simulator.Task)
	if !ok {
		return
	}
	name := vmRef.Value
	if vm, ok := simulator.Map.Get(vmRef).(*simulator.VirtualMachine); ok {
		simulator.Map.WithLock(vm, func() { name = vm.Name })
	}
	simulator.Map.WithLock(task, func() {
		info := task.Info
		info.Entity = &vmRef
		info.EntityName = name
		mapUpdate(task, []types.PropertyChange{{Name: "info", Val: info}})
	})
}

// snapshotFilesAfter brings vm's snapshot files in line with its snapshot tree after a call:
// created is the request of a CreateSnapshot_Task that just ran, else nil. Holds sim.mu.
func (s *sim) snapshotFilesAfter(vmRef types.ManagedObjectReference, created *types.CreateSnapshot_Task,
	saved *types.VirtualMachineFileLayoutEx) {
	vm, ok := simulator.Map.Get(vmRef).(*simulator.VirtualMachine)
	if !ok {
		delete(snapDeltas, vmRef)
		return
	}
	if created == nil && saved == nil && len(snapDeltas[vmRef]) == 0 {
		return
	}
	simulator.Map.WithLock(vm, func() {
		if vm.LayoutEx == nil {
			return
		}
		if created != nil && len(vm.LayoutEx.Snapshot) > 0 {
			s.addSnapshotFiles(vm, created)
		}
		var tree []types.VirtualMachineSnapshotTree
		if vm.Snapshot != nil {
			tree = vm.Snapshot.RootSnapshotList
		}
		gone := map[string]bool{}
		if saved != nil {
			restored := *saved
			restored.Snapshot = nil
			goneKeys := map[int32]bool{}
			for _, snap := range saved.Snapshot {
				if snapshotExists(tree, snap.Key) {
					restored.Snapshot = append(restored.Snapshot, snap)
				} else {
					goneKeys[snap.DataKey], goneKeys[snap.MemoryKey] = true, true
				}
			}
			for _, f := range saved.File {
				if goneKeys[f.Key] {
					gone[f.Name] = true
				}
			}
			restored.Timestamp = time.Now()
			vm.LayoutEx = &restored
		}
		kept := snapDeltas[vmRef][:0]
		for _, d := range snapDeltas[vmRef] {
			if snapshotExists(tree, d.snapshot) {
				kept = append(kept, d)
				continue
			}
			for _, name := range d.files {
				gone[name] = true
				if local, ok := localPath(vm, name); ok {
					_ = os.Remove(local)
				}
			}
		}
		snapDeltas[vmRef] = kept
		if len(kept) == 0 {
			delete(snapDeltas, vmRef)
		}
		files := vm.LayoutEx.File[:0]
		for _, f := range vm.LayoutEx.File {
			if !gone[f.Name] {
				files = append(files, f)
			}
		}
		vm.LayoutEx.File = files
		s.appendDeltaChains(vm, kept)
		mapUpdate(vm, []types.PropertyChange{{Name: "layoutEx", Val: *vm.LayoutEx}})
	})
}

// addSnapshotFiles sizes the newest snapshot's .vmsn, adds its .vmem and a delta per disk.
func (s *sim) addSnapshotFiles(vm *simulator.VirtualMachine, req *types.CreateSnapshot_Task) {
	last := &vm.LayoutEx.Snapshot[len(vm.LayoutEx.Snapshot)-1]
	var vmsn string
	for i := range vm.LayoutEx.File {
		f := &vm.LayoutEx.File[i]
		if f.Key == last.DataKey {
			f.Size, f.UniqueSize = snapshotDataBytes, snapshotDataBytes
			vmsn = f.Name
			if local, ok := localPath(vm, f.Name); ok {
				sparseFile(local, snapshotDataBytes)
			}
		}
	}
	if vmsn == "" {
		return
	}
	base := strings.TrimSuffix(vmsn, ".vmsn")
	if req.Memory && vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn {
		size := int64(vm.Config.Hardware.MemoryMB) * 1024 * 1024
		name := base + ".vmem"
		if local, ok := localPath(vm, name); ok && sparseFile(local, size) {
			last.MemoryKey = addLayoutFile(vm, name, string(types.VirtualMachineFileLayoutExFileTypeSnapshotMemory), size)
		}
	}
	n := len(vm.LayoutEx.Snapshot)
	for _, disk := range vm.LayoutEx.Disk {
		desc := diskDescriptor(vm, disk)
		if desc == "" {
			continue
		}
		stem := fmt.Sprintf("%s-%06d", strings.TrimSuffix(desc, ".vmdk"), n)
		d := snapDelta{snapshot: last.Key, diskKey: disk.Key}
		for _, f := range []struct {
			name string
			kind types.VirtualMachineFileLayoutExFileType
			size int64
		}{
			{stem + ".vmdk", types.VirtualMachineFileLayoutExFileTypeDiskDescriptor, deltaDescriptorBytes},
			{stem + "-delta.vmdk", types.VirtualMachineFileLayoutExFileTypeDiskExtent, deltaExtentBytes},
		} {
			if local, ok := localPath(vm, f.name); ok && sparseFile(local, f.size) {
				addLayoutFile(vm, f.name, string(f.kind), f.size)
				d.files = append(d.files, f.name)
			}
		}
		if len(d.files) == 2 {
			snapDeltas[vm.Self] = append(snapDeltas[vm.Self], d)
		}
	}
}

// diskDescriptor is the datastore path of the descriptor at the base of a disk's chain.
func diskDescriptor(vm *simulator.VirtualMachine, disk types.VirtualMachineFileLayoutExDiskLayout) string {
	if len(disk.Chain) == 0 {
		return ""
	}
	in := map[int32]bool{}
	for _, k := range disk.Chain[0].FileKey {
		in[k] = true
	}
	for _, f := range vm.LayoutEx.File {
		if in[f.Key] && f.Type == string(types.VirtualMachineFileLayoutExFileTypeDiskDescriptor) {
			return f.Name
		}
	}
	return ""
}

// appendDeltaChains makes each disk's current chain end with the deltas still held, in the
// order they were taken (new slices: the snapshots' own chains keep the layout they had).
func (s *sim) appendDeltaChains(vm *simulator.VirtualMachine, deltas []snapDelta) {
	keyOf := map[string]int32{}
	for _, f := range vm.LayoutEx.File {
		keyOf[f.Name] = f.Key
	}
	disks := make([]types.VirtualMachineFileLayoutExDiskLayout, len(vm.LayoutEx.Disk))
	for i, disk := range vm.LayoutEx.Disk {
		var chain []types.VirtualMachineFileLayoutExDiskUnit
		has := map[int32]bool{}
		exists := map[int32]bool{}
		for _, k := range keyOf {
			exists[k] = true
		}
		for _, unit := range disk.Chain {
			if len(unit.FileKey) > 0 && exists[unit.FileKey[0]] {
				has[unit.FileKey[0]] = true
				chain = append(chain, unit)
			}
		}
		for _, d := range deltas {
			if d.diskKey != disk.Key {
				continue
			}
			var keys []int32
			for _, name := range d.files {
				if k, ok := keyOf[name]; ok {
					keys = append(keys, k)
				}
			}
			if len(keys) > 0 && !has[keys[0]] {
				chain = append(chain, types.VirtualMachineFileLayoutExDiskUnit{FileKey: keys})
			}
		}
		disks[i] = types.VirtualMachineFileLayoutExDiskLayout{Key: disk.Key, Chain: chain}
	}
	vm.LayoutEx.Disk = disks
}
