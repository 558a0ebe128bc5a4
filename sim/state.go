package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	vmPoweredOn  = types.VirtualMachinePowerStatePoweredOn
	vmPoweredOff = types.VirtualMachinePowerStatePoweredOff

	toolsRunning    = string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
	toolsNotRunning = string(types.VirtualMachineToolsRunningStatusGuestToolsNotRunning)
	appGreen        = string(types.VirtualMachineAppHeartbeatStatusTypeAppStatusGreen)
	appGray         = string(types.VirtualMachineAppHeartbeatStatusTypeAppStatusGray)
	statusGreen     = types.ManagedEntityStatusGreen
	statusGray      = types.ManagedEntityStatusGray

	dasMaster            = string(types.ClusterDasFdmAvailabilityStateMaster)
	dasConnectedToMaster = string(types.ClusterDasFdmAvailabilityStateConnectedToMaster)
	dasElection          = string(types.ClusterDasFdmAvailabilityStateElection)
	dasHostDown          = string(types.ClusterDasFdmAvailabilityStateHostDown)
)

// hostSnap is a copy of the host fields the simulator derives things from.
type hostSnap struct {
	conn        types.HostSystemConnectionState
	power       types.HostSystemPowerState
	maintenance bool
	quarantine  bool
	overall     types.ManagedEntityStatus
	das         string // "" when runtime.dasHostState is unset
	dasReporter *types.ManagedObjectReference
	cpuMhz      int32
	cores       int16
	threads     int16
	memory      int64
	cpuUsage    int32
	memUsage    int32
}

func (h hostSnap) connected() bool { return h.conn == types.HostSystemConnectionStateConnected }

// alive: the host runs its VMs and vCenter can see them.
func (h hostSnap) alive() bool {
	return h.connected() && h.power == types.HostSystemPowerStatePoweredOn
}

// effective: counts towards the cluster's effective resources.
func (h hostSnap) effective() bool {
	return h.alive() && !h.maintenance && !h.quarantine
}

// electable: may become (or stay) the cluster's HA master.
func (h hostSnap) electable() bool {
	return h.alive() && !h.maintenance
}

func snapshotHostUnlocked(obj *simulator.HostSystem) hostSnap {
	s := hostSnap{
		conn:        obj.Runtime.ConnectionState,
		power:       obj.Runtime.PowerState,
		maintenance: obj.Runtime.InMaintenanceMode,
		quarantine:  obj.Runtime.InQuarantineMode != nil && *obj.Runtime.InQuarantineMode,
		overall:     obj.OverallStatus,
		cpuUsage:    obj.Summary.QuickStats.OverallCpuUsage,
		memUsage:    obj.Summary.QuickStats.OverallMemoryUsage,
	}
	if d := obj.Runtime.DasHostState; d != nil {
		s.das = d.State
		if d.StateReporter != nil {
			r := *d.StateReporter
			s.dasReporter = &r
		}
	}
	if hw := obj.Summary.Hardware; hw != nil {
		s.cpuMhz = hw.CpuMhz
		s.cores = hw.NumCpuCores
		s.threads = hw.NumCpuThreads
		s.memory = hw.MemorySize
	}
	return s
}

func snapshotHost(h *hostInfo) hostSnap {
	var s hostSnap
	simulator.Map.WithLock(h.obj, func() { s = snapshotHostUnlocked(h.obj) })
	return s
}

func (s *sim) snapshotHosts() map[types.ManagedObjectReference]hostSnap {
	snaps := make(map[types.ManagedObjectReference]hostSnap, len(s.hosts))
	for _, h := range s.hosts {
		snaps[h.ref] = snapshotHost(h)
	}
	return snaps
}

func clamp16(v int64) int16 {
	if v > 32767 {
		return 32767
	}
	return int16(v)
}

func clamp32(v int64) int32 {
	if v > 2147483647 {
		return 2147483647
	}
	return int32(v)
}

// clusterSummary derives a ClusterComputeResourceSummary from its hosts: totals over all
// hosts, "effective" figures over connected, powered-on hosts that are not in maintenance
// or quarantine mode. totalCpu/effectiveCpu are MHz (cores x MHz), totalMemory bytes,
// effectiveMemory MB, as in vSphere.
func clusterSummary(hosts []hostSnap) *types.ClusterComputeResourceSummary {
	var totalCPU, effCPU, totalMem, effMem, cores, threads, cpuUse, memUse int64
	var numEff int32
	for _, h := range hosts {
		cpu := int64(h.cpuMhz) * int64(h.cores)
		totalCPU += cpu
		totalMem += h.memory
		cores += int64(h.cores)
		threads += int64(h.threads)
		if h.effective() {
			numEff++
			effCPU += cpu
			effMem += h.memory / (1024 * 1024)
			cpuUse += int64(h.cpuUsage)
			memUse += int64(h.memUsage)
		}
	}
	status := statusGreen
	switch {
	case len(hosts) > 0 && numEff == 0:
		status = types.ManagedEntityStatusRed
	case int(numEff) < len(hosts):
		status = types.ManagedEntityStatusYellow
	}
	level := numEff - 1
	if level < 0 {
		level = 0
	}
	return &types.ClusterComputeResourceSummary{
		ComputeResourceSummary: types.ComputeResourceSummary{
			TotalCpu:          clamp32(totalCPU),
			TotalMemory:       totalMem,
			NumCpuCores:       clamp16(cores),
			NumCpuThreads:     clamp16(threads),
			EffectiveCpu:      clamp32(effCPU),
			EffectiveMemory:   effMem,
			NumHosts:          int32(len(hosts)),
			NumEffectiveHosts: numEff,
			OverallStatus:     status,
		},
		CurrentFailoverLevel: level,
		AdmissionControlInfo: &types.ClusterFailoverLevelAdmissionControlInfo{CurrentFailoverLevel: level},
		UsageSummary: &types.ClusterUsageSummary{
			TotalCpuCapacityMhz: clamp32(effCPU),
			TotalMemCapacityMB:  clamp32(effMem),
			CpuDemandMhz:        clamp32(cpuUse),
			MemDemandMB:         clamp32(memUse),
			StatsGenNumber:      1,
		},
	}
}

func summariesEqual(a, b *types.ClusterComputeResourceSummary) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.ComputeResourceSummary != b.ComputeResourceSummary || a.CurrentFailoverLevel != b.CurrentFailoverLevel {
		return false
	}
	if (a.UsageSummary == nil) != (b.UsageSummary == nil) {
		return false
	}
	return a.UsageSummary == nil || *a.UsageSummary == *b.UsageSummary
}

// reconcileLoop runs the guest-agent reconciler until stop is closed. Every SOAP call that
// can change a VM is already reconciled synchronously by the middleware; this loop is the
// safety net. It looks for VMs that appeared or vanished every discoverEvery passes.
func (s *sim) reconcileLoop(every time.Duration, stop <-chan struct{}) {
	const discoverEvery = 5
	t := time.NewTicker(every)
	defer t.Stop()
	for pass := 1; ; pass++ {
		select {
		case <-stop:
			return
		case <-t.C:
			s.mu.Lock()
			s.reconcileLocked(pass%discoverEvery == 0)
			s.mu.Unlock()
		}
	}
}

type vmMove struct {
	vm       types.ManagedObjectReference
	from, to types.ManagedObjectReference
}

// snapshotHostList returns host snapshots aligned with s.hosts.
func (s *sim) snapshotHostList() []hostSnap {
	snaps := make([]hostSnap, len(s.hosts))
	for i, h := range s.hosts {
		snaps[i] = snapshotHost(h)
	}
	return snaps
}

// hostSnapOf finds the snapshot of host r, using the index cached in t when it still fits.
func (s *sim) hostSnapOf(t *vmTrack, r types.ManagedObjectReference, snaps []hostSnap) (hostSnap, bool) {
	if i := t.hostIdx; i >= 0 && i < len(snaps) && s.hosts[i].ref == r {
		return snaps[i], true
	}
	if i, ok := s.hostIdx[r]; ok && i < len(snaps) {
		t.hostIdx = i
		return snaps[i], true
	}
	return hostSnap{}, false
}

// reconcileAllLocked is a full reconcile, including discovery of new and vanished VMs and
// hosts. Caller holds s.mu.
func (s *sim) reconcileAllLocked() { s.reconcileLocked(true) }

// reconcileLocked re-derives VM guest/connection state, repairs host.vm lists and
// recomputes cluster summaries. Caller holds s.mu.
func (s *sim) reconcileLocked(discover bool) {
	if discover {
		if n := len(simulator.Map.All("HostSystem")); n != s.hostCount {
			s.indexInventory() // hosts were added or removed through the SOAP API
		}
	}
	snaps := s.snapshotHostList()
	var moves []vmMove

	if !discover {
		for _, t := range s.vmList {
			s.reconcileVM(t.obj, snaps, &moves, false)
		}
	} else {
		for _, t := range s.vmList {
			t.seen = false
		}
		var fresh []*simulator.VirtualMachine
		for _, e := range simulator.Map.All("VirtualMachine") {
			vm, ok := e.(*simulator.VirtualMachine)
			if !ok {
				continue
			}
			if s.vms[vm.Self] == nil {
				fresh = append(fresh, vm)
				continue
			}
			s.reconcileVM(vm, snaps, &moves, false)
		}
		// VMs created through the SOAP API: track them in a stable order
		sort.Slice(fresh, func(i, j int) bool { return refLess(fresh[i].Self, fresh[j].Self) })
		for _, vm := range fresh {
			s.reconcileVM(vm, snaps, &moves, true)
		}
		list := s.vmList[:0]
		byName := make(map[string]types.ManagedObjectReference, len(s.vms))
		for _, t := range s.vmList {
			if !t.seen { // destroyed or unregistered
				if t.vmx != "" && t.ip != "" {
					s.ipByVmx[t.vmx] = t.ip // a re-registered VM is the same guest
				}
				moves = append(moves, vmMove{vm: t.ref, from: t.host})
				delete(s.vms, t.ref)
				continue
			}
			list = append(list, t)
			if _, dup := byName[t.name]; !dup {
				byName[t.name] = t.ref
			}
		}
		for i := len(list); i < len(s.vmList); i++ {
			s.vmList[i] = nil
		}
		s.vmList = list
		s.vmByName = byName
	}
	s.applyMoves(moves)

	hostPos := make(map[*hostInfo]int, len(s.hosts))
	for i, h := range s.hosts {
		hostPos[h] = i
	}
	for _, c := range s.clusters {
		hs := make([]hostSnap, 0, len(c.hosts))
		for _, h := range c.hosts {
			hs = append(hs, snaps[hostPos[h]])
		}
		want := clusterSummary(hs)
		simulator.Map.WithLock(c.obj, func() {
			cur, _ := c.obj.Summary.(*types.ClusterComputeResourceSummary)
			if summariesEqual(cur, want) {
				return
			}
			mapUpdate(c.obj, []types.PropertyChange{
				{Name: "summary", Val: want},
				{Name: "overallStatus", Val: want.OverallStatus},
			})
		})
	}
}

// reconcileOneLocked reconciles a single VM (after a SOAP call on it). Caller holds s.mu.
func (s *sim) reconcileOneLocked(r types.ManagedObjectReference) {
	vm, ok := simulator.Map.Get(r).(*simulator.VirtualMachine)
	if !ok {
		if t := s.vms[r]; t != nil {
			s.reconcileAllLocked() // it went away
		}
		return
	}
	var moves []vmMove
	s.reconcileVM(vm, s.snapshotHostList(), &moves, true)
	if t := s.vms[r]; t != nil {
		if _, ok := s.vmByName[t.name]; !ok {
			s.vmByName[t.name] = r
		}
	}
	s.applyMoves(moves)
}

// refLess orders morefs like "vm-12" < "vm-100".
func refLess(a, b types.ManagedObjectReference) bool {
	if len(a.Value) != len(b.Value) {
		return len(a.Value) < len(b.Value)
	}
	return a.Value < b.Value
}

func timePtrEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func copyTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

// reconcileVM is the guest-agent model for one VM; see docs/simulator.md.
//
//   - a new boot (summary.runtime.bootTime changed, e.g. PowerOnVM_Task or ResetVM_Task) or a
//     VM that is not powered on drops the injected guest faults;
//   - runtime.bootTime mirrors summary.runtime.bootTime (vcsim only sets the latter);
//   - runtime.connectionState follows the host's connectionState;
//   - powered off: heartbeats gray, tools not running; host not alive: heartbeats gray,
//     tools as last known; otherwise green/running unless a fault is injected;
//   - a powered-on VM moved off a host that was not connected lands powered off: the guest
//     died with its host, so RelocateVM_Task + PowerOnVM_Task is a restart.
//
// With force unset (the periodic pass) a VM whose inputs (power state, boot time, host and
// that host's state) did not change since its last reconcile is skipped.
func (s *sim) reconcileVM(vm *simulator.VirtualMachine, snaps []hostSnap, moves *[]vmMove, force bool) {
	simulator.Map.WithLock(vm, func() {
		r := vm.Self
		t := s.vms[r]
		if t == nil {
			t = s.trackNew(vm)
		}
		t.seen = true

		var hostRef types.ManagedObjectReference
		if vm.Runtime.Host != nil {
			hostRef = *vm.Runtime.Host
		}
		hs, known := s.hostSnapOf(t, hostRef, snaps)
		hostConnected := !known || hs.connected()
		hostAlive := !known || hs.alive()
		if !force && t.initialized && t.host == hostRef && t.connected == hostConnected &&
			t.alive == hostAlive && t.power == vm.Runtime.PowerState && t.name == vm.Name &&
			timePtrEqual(t.boot, vm.Summary.Runtime.BootTime) {
			return
		}
		first := !t.initialized
		t.initialized = true
		t.name = vm.Name

		var changes []types.PropertyChange
		power := vm.Runtime.PowerState
		sboot := vm.Summary.Runtime.BootTime
		if first {
			changes = append(changes, s.guestIdentity(vm, t)...)
			changes = append(changes, restoreHardware(vm)...)
			*moves = append(*moves, vmMove{vm: r, to: hostRef})
		} else if hostRef != t.host {
			*moves = append(*moves, vmMove{vm: r, from: t.host, to: hostRef})
			if !t.connected && power == vmPoweredOn {
				power = vmPoweredOff
				sboot = nil
				changes = append(changes,
					types.PropertyChange{Name: "runtime.powerState", Val: power},
					types.PropertyChange{Name: "summary.runtime.powerState", Val: power},
					types.PropertyChange{Name: "summary.runtime.bootTime", Val: nil},
				)
			}
		}
		if !timePtrEqual(sboot, t.boot) {
			if !first {
				t.ov = bootOverrides(vm) // sim/boot_hang.go; none unless marked
			}
			t.boot = copyTime(sboot)
		}
		if power != vmPoweredOn {
			t.ov = overrides{}
		}
		if !timePtrEqual(vm.Runtime.BootTime, sboot) {
			if sboot == nil {
				changes = append(changes, types.PropertyChange{Name: "runtime.bootTime", Val: nil})
			} else {
				changes = append(changes, types.PropertyChange{Name: "runtime.bootTime", Val: *sboot})
			}
		}

		conn := types.VirtualMachineConnectionStateConnected
		if !hostConnected {
			conn = types.VirtualMachineConnectionStateDisconnected
		}
		add := func(cur, want interface{}, names ...string) {
			if cur != want {
				for _, n := range names {
					changes = append(changes, types.PropertyChange{Name: n, Val: want})
				}
			}
		}
		add(vm.Runtime.ConnectionState, conn, "runtime.connectionState")
		add(vm.Summary.Runtime.ConnectionState, conn, "summary.runtime.connectionState")

		var guest types.GuestInfo
		if vm.Guest != nil {
			guest = *vm.Guest
		}
		var gsum types.VirtualMachineGuestSummary
		if vm.Summary.Guest != nil {
			gsum = *vm.Summary.Guest
		}
		hb, tools, app, state := vm.GuestHeartbeatStatus, guest.ToolsRunningStatus, guest.AppHeartbeatStatus, guest.GuestState
		switch {
		case power != vmPoweredOn:
			hb, tools, app = statusGray, toolsNotRunning, appGray
			state = string(types.VirtualMachineGuestStateNotRunning)
		case !hostAlive:
			hb, app = statusGray, appGray
		default:
			hb, tools, app = statusGreen, toolsRunning, appGreen
			if t.ov.guestHeartbeat != "" {
				hb = t.ov.guestHeartbeat
			}
			if t.ov.toolsRunning != "" {
				tools = t.ov.toolsRunning
			}
			if t.ov.appHeartbeat != "" {
				app = t.ov.appHeartbeat
			}
			state = string(types.VirtualMachineGuestStateRunning)
			if tools == toolsNotRunning {
				state = string(types.VirtualMachineGuestStateNotRunning)
			}
		}
		toolsStatus := types.VirtualMachineToolsStatusToolsOk
		if tools == toolsNotRunning {
			toolsStatus = types.VirtualMachineToolsStatusToolsNotRunning
		}
		add(vm.GuestHeartbeatStatus, hb, "guestHeartbeatStatus")
		add(vm.Summary.QuickStats.GuestHeartbeatStatus, hb, "summary.quickStats.guestHeartbeatStatus")
		add(guest.ToolsRunningStatus, tools, "guest.toolsRunningStatus")
		add(gsum.ToolsRunningStatus, tools, "summary.guest.toolsRunningStatus")
		add(guest.ToolsStatus, toolsStatus, "guest.toolsStatus")
		add(gsum.ToolsStatus, toolsStatus, "summary.guest.toolsStatus")
		add(guest.AppHeartbeatStatus, app, "guest.appHeartbeatStatus")
		add(guest.GuestState, state, "guest.guestState")

		if len(changes) > 0 {
			mapUpdate(vm, changes)
		}
		t.host = hostRef
		t.connected = hostConnected
		t.alive = hostAlive
		t.power = power
	})
}

func restartPriorityOf(vm *simulator.VirtualMachine, key int32) string {
	return customValue(&vm.ManagedEntity, key)
}

// customValue returns an entity's custom attribute value (the last one set).
func customValue(e *mo.ManagedEntity, key int32) string {
	value := ""
	for _, v := range e.CustomValue {
		if sv, ok := v.(*types.CustomFieldStringValue); ok && sv.Key == key {
			value = sv.Value
		}
	}
	return value
}

// guestIdentity gives a VM created through the SOAP API (CreateVM_Task, RegisterVM_Task,
// CloneVM_Task) the guest identity the initial VMs have: tools installed, guest OS, host
// name and, for a re-registered .vmx, its old IP address. Caller holds the VM's lock.
func (s *sim) guestIdentity(vm *simulator.VirtualMachine, t *vmTrack) []types.PropertyChange {
	if vm.Config != nil {
		t.vmx = vm.Config.Files.VmPathName
	}
	if vm.Guest == nil {
		return nil
	}
	t.ip = vm.Guest.IpAddress
	if vm.Guest.ToolsStatus != types.VirtualMachineToolsStatusToolsNotInstalled {
		return nil // one of ours
	}
	ip := s.ipByVmx[t.vmx]
	if ip == "" {
		s.nextIP++
		ip = fmt.Sprintf("10.%d.%d.%d", 200+(s.nextIP>>16)&0x1f, (s.nextIP>>8)&0xff, s.nextIP&0xff)
	}
	t.ip = ip
	current := string(types.VirtualMachineToolsVersionStatusGuestToolsCurrent)
	guestID := string(types.VirtualMachineGuestOsIdentifierOtherLinux64Guest)
	return []types.PropertyChange{
		{Name: "guest.toolsVersion", Val: toolsVersion},
		{Name: "guest.toolsVersionStatus", Val: current},
		{Name: "guest.toolsVersionStatus2", Val: current},
		{Name: "guest.guestId", Val: guestID},
		{Name: "guest.guestFamily", Val: string(types.VirtualMachineGuestOsFamilyLinuxGuest)},
		{Name: "guest.guestFullName", Val: "Other Linux (64-bit)"},
		{Name: "guest.hostName", Val: vm.Name},
		{Name: "guest.ipAddress", Val: ip},
		{Name: "summary.guest.toolsVersionStatus", Val: current},
		{Name: "summary.guest.toolsVersionStatus2", Val: current},
		{Name: "summary.guest.guestId", Val: guestID},
		{Name: "summary.guest.guestFullName", Val: "Other Linux (64-bit)"},
		{Name: "summary.guest.hostName", Val: vm.Name},
		{Name: "summary.guest.ipAddress", Val: ip},
	}
}

// refreshCustomValues de-duplicates an entity's custom values (vcsim appends on every
// SetCustomValue) and announces them: vcsim does not tell property collectors.
func (s *sim) refreshCustomValues(r types.ManagedObjectReference) {
	obj := simulator.Map.Get(r)
	e, ok := obj.(mo.Entity)
	if !ok {
		return
	}
	simulator.Map.WithLock(obj, func() {
		me := e.Entity()
		var keys []int32
		last := map[int32]types.BaseCustomFieldValue{}
		for _, v := range me.CustomValue {
			k := v.GetCustomFieldValue().Key
			if _, seen := last[k]; !seen {
				keys = append(keys, k)
			}
			last[k] = v
		}
		values := make([]types.BaseCustomFieldValue, 0, len(keys))
		for _, k := range keys {
			values = append(values, last[k])
		}
		mapUpdate(obj, []types.PropertyChange{
			{Name: "customValue", Val: values},
			{Name: "value", Val: values},
		})
	})
	if h := s.hostByRef[r]; h != nil && s.faultDomainKey != 0 {
		simulator.Map.WithLock(h.obj, func() { h.faultDomain = customValue(&h.obj.ManagedEntity, s.faultDomainKey) })
	}
}

// applyMoves keeps host.vm consistent with vm.runtime.host (vcsim's RelocateVM_Task does
// not update either host's list).
func (s *sim) applyMoves(moves []vmMove) {
	if len(moves) == 0 {
		return
	}
	type edit struct {
		add, remove []types.ManagedObjectReference
	}
	edits := map[types.ManagedObjectReference]*edit{}
	get := func(h types.ManagedObjectReference) *edit {
		e := edits[h]
		if e == nil {
			e = &edit{}
			edits[h] = e
		}
		return e
	}
	var zero types.ManagedObjectReference
	for _, m := range moves {
		if m.from != zero && m.from != m.to {
			get(m.from).remove = append(get(m.from).remove, m.vm)
		}
		if m.to != zero {
			get(m.to).add = append(get(m.to).add, m.vm)
		}
	}
	for hr, e := range edits {
		h := s.hostByRef[hr]
		if h == nil {
			continue
		}
		simulator.Map.WithLock(h.obj, func() {
			drop := map[types.ManagedObjectReference]bool{}
			for _, r := range e.remove {
				drop[r] = true
			}
			have := map[types.ManagedObjectReference]bool{}
			list := make([]types.ManagedObjectReference, 0, len(h.obj.Vm)+len(e.add))
			changed := false
			for _, r := range h.obj.Vm {
				if drop[r] {
					changed = true
					continue
				}
				have[r] = true
				list = append(list, r)
			}
			for _, r := range e.add {
				if !have[r] {
					have[r] = true
					list = append(list, r)
					changed = true
				}
			}
			if changed {
				mapUpdate(h.obj, []types.PropertyChange{{Name: "vm", Val: list}})
			}
		})
	}
}

// hostChanges builds the property changes that set a host's runtime fields, including the
// summary.runtime mirror paths so that collectors watching either path see the update.
type hostUpdate struct {
	conn        *types.HostSystemConnectionState
	power       *types.HostSystemPowerState
	maintenance *bool
	quarantine  *bool
	overall     *types.ManagedEntityStatus
	setDas      bool
	das         *types.ClusterDasFdmHostState
}

func (u hostUpdate) changes() []types.PropertyChange {
	var c []types.PropertyChange
	both := func(name string, v interface{}) {
		c = append(c,
			types.PropertyChange{Name: "runtime." + name, Val: v},
			types.PropertyChange{Name: "summary.runtime." + name, Val: v})
	}
	if u.conn != nil {
		both("connectionState", *u.conn)
	}
	if u.power != nil {
		both("powerState", *u.power)
	}
	if u.maintenance != nil {
		both("inMaintenanceMode", *u.maintenance)
	}
	if u.quarantine != nil {
		both("inQuarantineMode", *u.quarantine)
	}
	if u.overall != nil {
		c = append(c,
			types.PropertyChange{Name: "overallStatus", Val: *u.overall},
			types.PropertyChange{Name: "summary.overallStatus", Val: *u.overall})
	}
	if u.setDas {
		if u.das == nil {
			both("dasHostState", nil)
		} else {
			both("dasHostState", *u.das)
		}
	}
	return c
}

func (s *sim) updateHost(h *hostInfo, u hostUpdate) {
	changes := u.changes()
	if len(changes) == 0 {
		return
	}
	simulator.Map.WithLock(h.obj, func() {
		mapUpdate(h.obj, changes)
	})
}

func dasState(state string, reporter *hostInfo) *types.ClusterDasFdmHostState {
	d := &types.ClusterDasFdmHostState{State: state}
	if reporter != nil {
		r := reporter.ref
		d.StateReporter = &r
	}
	return d
}

// masterOf returns the first host of c (in cluster order) whose dasHostState is master,
// skipping the host "except".
func masterOf(c *clusterInfo, snaps map[types.ManagedObjectReference]hostSnap, except *hostInfo) *hostInfo {
	for _, h := range c.hosts {
		if h != except && snaps[h.ref].das == dasMaster {
			return h
		}
	}
	return nil
}

// electMaster picks the first electable host of c other than "except".
func electMaster(c *clusterInfo, snaps map[types.ManagedObjectReference]hostSnap, except *hostInfo) *hostInfo {
	for _, h := range c.hosts {
		if h != except && snaps[h.ref].electable() {
			return h
		}
	}
	return nil
}

// pointSlavesAt makes every live host of c that follows a master report to m.
func (s *sim) pointSlavesAt(c *clusterInfo, m *hostInfo, snaps map[types.ManagedObjectReference]hostSnap, except *hostInfo) {
	for _, h := range c.hosts {
		if h == m || h == except {
			continue
		}
		hs := snaps[h.ref]
		if !hs.alive() || (hs.das != dasConnectedToMaster && hs.das != dasElection) {
			continue
		}
		if hs.das == dasConnectedToMaster && hs.dasReporter != nil && *hs.dasReporter == m.ref {
			continue
		}
		s.updateHost(h, hostUpdate{setDas: true, das: dasState(dasConnectedToMaster, m)})
	}
}

// failHost marks h notResponding and moves the HA master if needed. Caller holds s.mu.
func (s *sim) failHost(h *hostInfo, das string) {
	snaps := s.snapshotHosts()
	conn := types.HostSystemConnectionStateNotResponding
	power := types.HostSystemPowerStateUnknown
	red := types.ManagedEntityStatusRed
	u := hostUpdate{conn: &conn, power: &power, overall: &red}

	var newMaster *hostInfo
	if c := h.cluster; c != nil && clusterHAEnabled(c) { // no HA agents: no dasHostState
		wasMaster := snaps[h.ref].das == dasMaster
		newMaster = masterOf(c, snaps, h)
		if newMaster == nil && wasMaster {
			newMaster = electMaster(c, snaps, h)
		}
		u.setDas = true
		u.das = dasState(das, newMaster)
		s.updateHost(h, u)
		if newMaster != nil && snaps[newMaster.ref].das != dasMaster {
			s.updateHost(newMaster, hostUpdate{setDas: true, das: dasState(dasMaster, newMaster)})
			snaps[newMaster.ref] = snapshotHost(newMaster)
			s.pointSlavesAt(c, newMaster, snaps, h)
		}
	} else {
		s.updateHost(h, u)
	}

	lost := &types.HostConnectionLostEvent{HostEvent: s.hostEvent(h)}
	lost.FullFormattedMessage = fmt.Sprintf("Host %s in %s is not responding", h.name, h.dc.name)
	events := []types.BaseEvent{lost}
	if c := h.cluster; c != nil && clusterHAEnabled(c) {
		switch das {
		case string(types.ClusterDasFdmAvailabilityStateHostDown):
			e := &types.DasHostFailedEvent{ClusterEvent: s.clusterEvent(c), FailedHost: *s.hostArg(h)}
			e.FullFormattedMessage = fmt.Sprintf(
				"vSphere HA detected a possible host failure of host %s in cluster %s in %s", h.name, c.name, h.dc.name)
			events = append(events, e)
		case string(types.ClusterDasFdmAvailabilityStateNetworkIsolated):
			e := &types.DasHostIsolatedEvent{ClusterEvent: s.clusterEvent(c), IsolatedHost: *s.hostArg(h)}
			e.FullFormattedMessage = fmt.Sprintf(
				"vSphere HA detected that host %s is isolated from cluster %s in %s", h.name, c.name, h.dc.name)
			events = append(events, e)
		}
	}
	s.postEvents(events...)
	s.reconcileAllLocked()
}

// recoverHost brings h back. Caller holds s.mu.
func (s *sim) recoverHost(h *hostInfo) {
	snaps := s.snapshotHosts()
	conn := types.HostSystemConnectionStateConnected
	power := types.HostSystemPowerStatePoweredOn
	green := types.ManagedEntityStatusGreen
	u := hostUpdate{conn: &conn, power: &power, overall: &green}
	if c := h.cluster; c != nil && clusterHAEnabled(c) {
		u.setDas = true
		if m := masterOf(c, snaps, h); m != nil {
			u.das = dasState(dasConnectedToMaster, m)
			s.updateHost(h, u)
		} else {
			u.das = dasState(dasMaster, h)
			s.updateHost(h, u)
			snaps[h.ref] = snapshotHost(h)
			s.pointSlavesAt(c, h, snaps, nil)
		}
	} else {
		s.updateHost(h, u)
	}
	connected := &types.HostConnectedEvent{HostEvent: s.hostEvent(h)}
	connected.FullFormattedMessage = fmt.Sprintf("Connected to %s in %s", h.name, h.dc.name)
	s.postEvents(connected)
	s.reconcileAllLocked()
}

// events

var eventSession = &simulator.Session{
	UserSession: types.UserSession{UserName: "vpxd-extension-ha", FullName: "vSphere HA"},
	Registry:    simulator.NewRegistry(),
}

func (s *sim) postEvents(events ...types.BaseEvent) {
	em := simulator.Map.EventManager()
	ctx := &simulator.Context{Context: context.Background(), Map: simulator.Map, Session: eventSession}
	defer func() { _ = recover() }() // events are a nicety; never take the API down
	simulator.Map.WithLock(em, func() {
		for _, e := range events {
			em.PostEvent(ctx, &types.PostEvent{EventToPost: e})
		}
	})
}

func (s *sim) hostArg(h *hostInfo) *types.HostEventArgument {
	return &types.HostEventArgument{Host: h.ref, EntityEventArgument: types.EntityEventArgument{Name: h.name}}
}

func (s *sim) dcArg(dc *dcInfo) *types.DatacenterEventArgument {
	return &types.DatacenterEventArgument{Datacenter: dc.ref, EntityEventArgument: types.EntityEventArgument{Name: dc.name}}
}

func (s *sim) hostEvent(h *hostInfo) types.HostEvent {
	e := types.HostEvent{Event: types.Event{Datacenter: s.dcArg(h.dc), Host: s.hostArg(h)}}
	if h.cluster != nil {
		e.ComputeResource = &types.ComputeResourceEventArgument{
			ComputeResource:     h.cluster.ref,
			EntityEventArgument: types.EntityEventArgument{Name: h.cluster.name},
		}
	}
	return e
}

func (s *sim) clusterEvent(c *clusterInfo) types.ClusterEvent {
	return types.ClusterEvent{Event: types.Event{
		Datacenter: s.dcArg(c.dc),
		ComputeResource: &types.ComputeResourceEventArgument{
			ComputeResource:     c.ref,
			EntityEventArgument: types.EntityEventArgument{Name: c.name},
		},
	}}
}
