package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	fieldFaultDomain     = "HA-FaultDomain"
	fieldRestartPriority = "HA-RestartPriority"

	hostCPUMhz     = 2400
	hostCPUPkgs    = 2
	hostCPUCores   = 24
	hostCPUThreads = 48
	hostMemoryMB   = 384 * 1024
	hostCPUBase    = 350  // MHz the hypervisor itself uses
	hostMemBase    = 6144 // MB the hypervisor itself uses

	vmNumCPU   = 2
	vmMemoryMB = 4096

	toolsVersion = "12389"
)

var restartPriorities = []string{"high", "medium", "low"}

type dcInfo struct {
	ref      types.ManagedObjectReference
	name     string
	vmFolder types.ManagedObjectReference
}

type clusterInfo struct {
	ref   types.ManagedObjectReference
	name  string
	dc    *dcInfo
	hosts []*hostInfo
	obj   *simulator.ClusterComputeResource
}

type hostInfo struct {
	ref         types.ManagedObjectReference
	name        string
	dc          *dcInfo
	cluster     *clusterInfo // nil for a standalone host
	faultDomain string
	obj         *simulator.HostSystem
}

// overrides are guest faults injected through the API; empty means "none".
type overrides struct {
	guestHeartbeat types.ManagedEntityStatus
	toolsRunning   string
	appHeartbeat   string
}

// vmTrack is the reconciler's memory of one VM.
type vmTrack struct {
	ref             types.ManagedObjectReference
	name            string
	obj             *simulator.VirtualMachine
	host            types.ManagedObjectReference
	hostIdx         int  // index of host in sim.hosts, a lookup cache
	connected       bool // derived runtime.connectionState at the last reconcile
	alive           bool // the host was alive at the last reconcile
	power           types.VirtualMachinePowerState
	boot            *time.Time
	ov              overrides
	restartPriority string
	vmx             string // config.files.vmPathName
	ip              string // guest.ipAddress
	seen            bool
	initialized     bool // reconciled at least once
}

// sim holds the simulator's HA view of the vcsim registry. mu serialises every fault-API
// mutation and every reconcile; vcsim objects are always changed under their own
// simulator.Map.WithLock, one object at a time (never nested), so SOAP calls and this code
// cannot deadlock.
type sim struct {
	cfg   *config
	model *simulator.Model

	mu             sync.Mutex
	dcs            []*dcInfo
	clusters       []*clusterInfo
	hosts          []*hostInfo
	hostByRef      map[types.ManagedObjectReference]*hostInfo
	hostIdx        map[types.ManagedObjectReference]int // position in hosts
	hostByName     map[string]*hostInfo
	clusterByName  map[string]*clusterInfo
	clusterByRef   map[types.ManagedObjectReference]*clusterInfo
	vms            map[types.ManagedObjectReference]*vmTrack
	vmList         []*vmTrack // in creation order
	vmByName       map[string]types.ManagedObjectReference
	hostCount      int
	restartKey     int32
	faultDomainKey int32
	ipByVmx        map[string]string // guest IPs of VMs that left the inventory
	nextIP         int

	strict       atomic.Bool
	strictSource atomic.Bool
	faults       *faultTable
}

func buildSimulator(cfg *config) (*sim, error) {
	m := simulator.VPX()
	m.Datacenter = cfg.datacenters
	m.Cluster = cfg.clusters
	m.ClusterHost = cfg.hosts
	m.Host = cfg.standaloneHosts
	m.Machine = 0 // VMs are created below, placed round-robin
	m.Portgroup = 0
	m.Datastore = 1
	m.Autostart = false
	t0 := time.Now()
	if err := m.Create(); err != nil {
		return nil, err
	}
	logf("model created in %.2fs", time.Since(t0).Seconds())

	s := &sim{cfg: cfg, model: m, faults: newFaultTable(), ipByVmx: map[string]string{}}
	s.strict.Store(cfg.strict)
	realVCenter.Store(cfg.realVCenter)
	s.strictSource.Store(cfg.strictSource)
	s.indexInventory()

	client, err := vim25.NewClient(context.Background(), m.Service)
	if err != nil {
		return nil, err
	}
	cfm := object.NewCustomFieldsManager(client)
	ctx := context.Background()
	fdDef, err := cfm.Add(ctx, fieldFaultDomain, "HostSystem", nil, nil)
	if err != nil {
		return nil, err
	}
	rpDef, err := cfm.Add(ctx, fieldRestartPriority, "VirtualMachine", nil, nil)
	if err != nil {
		return nil, err
	}
	s.restartKey = rpDef.Key
	s.faultDomainKey = fdDef.Key

	t0 = time.Now()
	start := time.Now()
	for _, c := range s.clusters {
		for i, h := range c.hosts {
			if cfg.faultDomains > 0 {
				h.faultDomain = fmt.Sprintf("fd-%c", 'a'+i%cfg.faultDomains)
				setCustomValue(&h.obj.ManagedEntity, fdDef.Key, h.faultDomain)
			}
		}
	}

	vmIndex := 0
	for _, c := range s.clusters {
		if len(c.hosts) == 0 {
			continue
		}
		for i := 0; i < cfg.vms; i++ {
			h := c.hosts[i%len(c.hosts)]
			name := fmt.Sprintf("%s_VM%d", c.name, i)
			vm, err := createVM(ctx, client, c.dc, *c.obj.ResourcePool, h, name)
			if err != nil {
				return nil, fmt.Errorf("creating %s: %v", name, err)
			}
			s.initVM(vm, vmIndex, restartPriorities[i%len(restartPriorities)], start)
			s.trackNew(vm)
			vmIndex++
		}
	}
	for _, h := range s.hosts {
		if h.cluster != nil {
			continue
		}
		cr := simulator.Map.Get(*h.obj.Parent).(*mo.ComputeResource)
		for i := 0; i < cfg.standaloneVMs; i++ {
			name := fmt.Sprintf("%s_VM%d", h.name, i)
			vm, err := createVM(ctx, client, h.dc, *cr.ResourcePool, h, name)
			if err != nil {
				return nil, fmt.Errorf("creating %s: %v", name, err)
			}
			s.initVM(vm, vmIndex, restartPriorities[i%len(restartPriorities)], start)
			s.trackNew(vm)
			vmIndex++
		}
	}
	logf("%d VMs created in %.2fs", vmIndex, time.Since(t0).Seconds())

	for _, h := range s.hosts {
		s.initHost(h, start)
	}
	for _, c := range s.clusters {
		initCluster(c)
	}
	s.haInitLocked() // sim/ha_config.go: dasVmProtection
	return s, nil
}

// indexInventory walks root folder -> datacenters -> host folders and records datacenters,
// clusters and hosts in creation order. Callers hold s.mu (or run before serving).
func (s *sim) indexInventory() {
	s.dcs = nil
	s.clusters = nil
	s.hosts = nil
	s.hostByRef = map[types.ManagedObjectReference]*hostInfo{}
	s.hostIdx = map[types.ManagedObjectReference]int{}
	s.hostByName = map[string]*hostInfo{}
	s.clusterByName = map[string]*clusterInfo{}
	s.clusterByRef = map[types.ManagedObjectReference]*clusterInfo{}
	if s.vms == nil {
		s.vms = map[types.ManagedObjectReference]*vmTrack{}
		s.vmByName = map[string]types.ManagedObjectReference{}
	}

	root, ok := simulator.Map.Get(s.model.ServiceContent.RootFolder).(*simulator.Folder)
	if !ok {
		return
	}
	var walkDCs func(children []types.ManagedObjectReference)
	walkDCs = func(children []types.ManagedObjectReference) {
		for _, child := range children {
			switch obj := simulator.Map.Get(child).(type) {
			case *simulator.Folder:
				walkDCs(folderChildren(obj))
			case *simulator.Datacenter:
				var hostFolder types.ManagedObjectReference
				dc := &dcInfo{ref: obj.Self}
				simulator.Map.WithLock(obj, func() {
					dc.name = obj.Name
					dc.vmFolder = obj.VmFolder
					hostFolder = obj.HostFolder
				})
				s.dcs = append(s.dcs, dc)
				if f, ok := simulator.Map.Get(hostFolder).(*simulator.Folder); ok {
					s.walkComputeResources(dc, folderChildren(f))
				}
			}
		}
	}
	walkDCs(folderChildren(root))
	s.hostCount = len(s.hosts)
}

func folderChildren(f *simulator.Folder) []types.ManagedObjectReference {
	var children []types.ManagedObjectReference
	simulator.Map.WithLock(f, func() {
		children = append(children, f.ChildEntity...)
	})
	return children
}

func (s *sim) walkComputeResources(dc *dcInfo, children []types.ManagedObjectReference) {
	for _, child := range children {
		switch obj := simulator.Map.Get(child).(type) {
		case *simulator.Folder:
			s.walkComputeResources(dc, folderChildren(obj))
		case *simulator.ClusterComputeResource:
			c := &clusterInfo{ref: obj.Self, dc: dc, obj: obj}
			var hosts []types.ManagedObjectReference
			simulator.Map.WithLock(obj, func() {
				c.name = obj.Name
				hosts = append(hosts, obj.Host...)
			})
			s.clusters = append(s.clusters, c)
			s.clusterByName[c.name] = c
			s.clusterByRef[c.ref] = c
			for _, hr := range hosts {
				if h := s.addHost(dc, c, hr); h != nil {
					c.hosts = append(c.hosts, h)
				}
			}
		case *mo.ComputeResource:
			var hosts []types.ManagedObjectReference
			simulator.Map.WithLock(obj, func() {
				hosts = append(hosts, obj.Host...)
			})
			for _, hr := range hosts {
				s.addHost(dc, nil, hr)
			}
		}
	}
}

func (s *sim) addHost(dc *dcInfo, c *clusterInfo, hr types.ManagedObjectReference) *hostInfo {
	obj, ok := simulator.Map.Get(hr).(*simulator.HostSystem)
	if !ok {
		return nil
	}
	h := &hostInfo{ref: hr, dc: dc, cluster: c, obj: obj}
	simulator.Map.WithLock(obj, func() {
		h.name = obj.Name
		for _, v := range obj.CustomValue {
			if sv, ok := v.(*types.CustomFieldStringValue); ok && sv.Value != "" && c != nil {
				if def := fieldName(sv.Key); def == fieldFaultDomain {
					h.faultDomain = sv.Value
				}
			}
		}
	})
	s.hostIdx[hr] = len(s.hosts)
	s.hosts = append(s.hosts, h)
	s.hostByRef[hr] = h
	s.hostByName[h.name] = h
	return h
}

// trackNew registers a VM with the reconciler (in creation order); the first reconcile
// fills in the rest.
func (s *sim) trackNew(vm *simulator.VirtualMachine) *vmTrack {
	t := &vmTrack{ref: vm.Self, obj: vm, name: vm.Name, hostIdx: -1,
		restartPriority: restartPriorityOf(vm, s.restartKey)}
	s.vms[vm.Self] = t
	s.vmList = append(s.vmList, t)
	return t
}

func fieldName(key int32) string {
	cfm := simulator.Map.CustomFieldsManager()
	name := ""
	simulator.Map.WithLock(cfm, func() {
		for _, f := range cfm.Field {
			if f.Key == key {
				name = f.Name
			}
		}
	})
	return name
}

func setCustomValue(e *mo.ManagedEntity, key int32, value string) {
	v := &types.CustomFieldStringValue{CustomFieldValue: types.CustomFieldValue{Key: key}, Value: value}
	e.CustomValue = append(e.CustomValue, v)
	e.Value = append(e.Value, v)
}

func createVM(ctx context.Context, c *vim25.Client, dc *dcInfo, pool types.ManagedObjectReference,
	h *hostInfo, name string) (*simulator.VirtualMachine, error) {
	spec := types.VirtualMachineConfigSpec{
		Name:     name,
		GuestId:  string(types.VirtualMachineGuestOsIdentifierOtherLinux64Guest),
		NumCPUs:  vmNumCPU,
		MemoryMB: vmMemoryMB,
		Files:    &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"},
	}
	folder := object.NewFolder(c, dc.vmFolder)
	hs := object.NewHostSystem(c, h.ref)
	task, err := folder.CreateVM(ctx, spec, object.NewResourcePool(c, pool), hs)
	if err != nil {
		return nil, err
	}
	// vcsim runs tasks synchronously: the task is complete once CreateVM returns.
	t, ok := simulator.Map.Get(task.Reference()).(*simulator.Task)
	if !ok {
		return nil, fmt.Errorf("task %s not found", task.Reference())
	}
	if t.Info.Error != nil {
		return nil, fmt.Errorf("%s", t.Info.Error.LocalizedMessage)
	}
	vmRef, ok := t.Info.Result.(types.ManagedObjectReference)
	if !ok {
		return nil, fmt.Errorf("unexpected CreateVM result %T", t.Info.Result)
	}
	vm, ok := simulator.Map.Get(vmRef).(*simulator.VirtualMachine)
	if !ok {
		return nil, fmt.Errorf("vm %s not found", vmRef)
	}
	simulator.Map.Remove(task.Reference()) // keep the registry small
	return vm, nil
}

// initVM powers the VM on with a healthy guest. Runs before the server serves.
func (s *sim) initVM(vm *simulator.VirtualMachine, idx int, priority string, now time.Time) {
	boot := now.Add(-time.Hour - time.Duration(idx%3600)*time.Second)
	boot2 := boot
	ip := fmt.Sprintf("10.%d.%d.%d", 16+(idx>>16)&0x0f, (idx>>8)&0xff, idx&0xff)
	cpuUsage := int32(150 + (idx%7)*60)
	guestMem := int32(vmMemoryMB/4 + (idx%5)*256)

	vm.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOn
	vm.Runtime.ConnectionState = types.VirtualMachineConnectionStateConnected
	vm.Runtime.BootTime = &boot
	vm.Summary.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOn
	vm.Summary.Runtime.ConnectionState = types.VirtualMachineConnectionStateConnected
	vm.Summary.Runtime.BootTime = &boot2
	vm.Summary.Runtime.Host = vm.Runtime.Host

	vm.GuestHeartbeatStatus = types.ManagedEntityStatusGreen
	vm.Summary.QuickStats.GuestHeartbeatStatus = types.ManagedEntityStatusGreen
	vm.Summary.QuickStats.OverallCpuUsage = cpuUsage
	vm.Summary.QuickStats.OverallCpuDemand = cpuUsage
	vm.Summary.QuickStats.GuestMemoryUsage = guestMem
	vm.Summary.QuickStats.HostMemoryUsage = guestMem + 256
	vm.Summary.QuickStats.UptimeSeconds = int32(now.Sub(boot).Seconds())
	vm.Summary.OverallStatus = types.ManagedEntityStatusGreen

	if vm.Guest == nil {
		vm.Guest = &types.GuestInfo{}
	}
	vm.Guest.ToolsStatus = types.VirtualMachineToolsStatusToolsOk
	vm.Guest.ToolsRunningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
	vm.Guest.ToolsVersionStatus = string(types.VirtualMachineToolsVersionStatusGuestToolsCurrent)
	vm.Guest.ToolsVersionStatus2 = string(types.VirtualMachineToolsVersionStatusGuestToolsCurrent)
	vm.Guest.ToolsVersion = toolsVersion
	vm.Guest.GuestId = string(types.VirtualMachineGuestOsIdentifierOtherLinux64Guest)
	vm.Guest.GuestFamily = string(types.VirtualMachineGuestOsFamilyLinuxGuest)
	vm.Guest.GuestFullName = "Other Linux (64-bit)"
	vm.Guest.HostName = vm.Name
	vm.Guest.IpAddress = ip
	vm.Guest.GuestState = string(types.VirtualMachineGuestStateRunning)
	vm.Guest.AppHeartbeatStatus = string(types.VirtualMachineAppHeartbeatStatusTypeAppStatusGreen)
	if vm.Summary.Guest == nil {
		vm.Summary.Guest = &types.VirtualMachineGuestSummary{}
	}
	vm.Summary.Guest.GuestId = vm.Guest.GuestId
	vm.Summary.Guest.GuestFullName = vm.Guest.GuestFullName
	vm.Summary.Guest.ToolsStatus = vm.Guest.ToolsStatus
	vm.Summary.Guest.ToolsVersionStatus = vm.Guest.ToolsVersionStatus
	vm.Summary.Guest.ToolsVersionStatus2 = vm.Guest.ToolsVersionStatus2
	vm.Summary.Guest.ToolsRunningStatus = vm.Guest.ToolsRunningStatus
	vm.Summary.Guest.HostName = vm.Guest.HostName
	vm.Summary.Guest.IpAddress = ip
	if vm.Config != nil {
		if vm.Config.Tools == nil {
			vm.Config.Tools = &types.ToolsConfigInfo{}
		}
		vm.Config.Tools.ToolsVersion = 12389
	}
	setCustomValue(&vm.ManagedEntity, s.restartKey, priority)
}

// initHost sets hardware, quick stats, HA state and boot time. Runs before serving.
func (s *sim) initHost(h *hostInfo, now time.Time) {
	obj := h.obj
	boot := now.Add(-30 * 24 * time.Hour)
	obj.Runtime.BootTime = &boot
	obj.Runtime.InQuarantineMode = types.NewBool(false)
	obj.Runtime.PowerState = types.HostSystemPowerStatePoweredOn
	obj.Runtime.ConnectionState = types.HostSystemConnectionStateConnected

	hw := obj.Summary.Hardware
	hw.Vendor = "Dell Inc."
	hw.Model = "PowerEdge R650"
	hw.CpuModel = "Intel(R) Xeon(R) Gold 6336Y CPU @ 2.40GHz"
	hw.CpuMhz = hostCPUMhz
	hw.NumCpuPkgs = hostCPUPkgs
	hw.NumCpuCores = hostCPUCores
	hw.NumCpuThreads = hostCPUThreads
	hw.MemorySize = int64(hostMemoryMB) * 1024 * 1024
	if obj.Hardware != nil {
		obj.Hardware.CpuInfo.NumCpuPackages = hostCPUPkgs
		obj.Hardware.CpuInfo.NumCpuCores = hostCPUCores
		obj.Hardware.CpuInfo.NumCpuThreads = hostCPUThreads
		obj.Hardware.CpuInfo.Hz = hostCPUMhz * 1000 * 1000
		obj.Hardware.MemorySize = hw.MemorySize
	}

	cpu := int32(hostCPUBase)
	mem := int32(hostMemBase)
	for _, vr := range obj.Vm {
		if vm, ok := simulator.Map.Get(vr).(*simulator.VirtualMachine); ok {
			cpu += vm.Summary.QuickStats.OverallCpuUsage
			mem += vm.Summary.QuickStats.HostMemoryUsage
		}
	}
	obj.Summary.QuickStats.OverallCpuUsage = cpu
	obj.Summary.QuickStats.OverallMemoryUsage = mem
	obj.Summary.QuickStats.DistributedCpuFairness = 1000
	obj.Summary.QuickStats.DistributedMemoryFairness = 1000
	obj.Summary.QuickStats.Uptime = int32(now.Sub(boot).Seconds())
	obj.Summary.OverallStatus = types.ManagedEntityStatusGreen
	obj.OverallStatus = types.ManagedEntityStatusGreen

	if c := h.cluster; c != nil && len(c.hosts) > 0 {
		master := c.hosts[0]
		state := types.ClusterDasFdmAvailabilityStateConnectedToMaster
		if master == h {
			state = types.ClusterDasFdmAvailabilityStateMaster
		}
		mref := master.ref
		obj.Runtime.DasHostState = &types.ClusterDasFdmHostState{State: string(state), StateReporter: &mref}
	}
}

// initCluster enables HA and DRS and computes a consistent summary. Runs before serving.
func initCluster(c *clusterInfo) {
	obj := c.obj
	das := types.ClusterDasConfigInfo{
		Enabled:                 types.NewBool(true),
		VmMonitoring:            string(types.ClusterDasConfigInfoVmMonitoringStateVmAndAppMonitoring),
		HostMonitoring:          string(types.ClusterDasConfigInfoServiceStateEnabled),
		VmComponentProtecting:   string(types.ClusterDasConfigInfoServiceStateDisabled),
		FailoverLevel:           1,
		AdmissionControlEnabled: types.NewBool(true),
		AdmissionControlPolicy:  &types.ClusterFailoverLevelAdmissionControlPolicy{FailoverLevel: 1},
		DefaultVmSettings: &types.ClusterDasVmSettings{
			RestartPriority:   string(types.ClusterDasVmSettingsRestartPriorityMedium),
			IsolationResponse: string(types.ClusterDasVmSettingsIsolationResponsePowerOff),
			VmToolsMonitoringSettings: &types.ClusterVmToolsMonitoringSettings{
				Enabled:          types.NewBool(true),
				VmMonitoring:     string(types.ClusterDasConfigInfoVmMonitoringStateVmAndAppMonitoring),
				ClusterSettings:  types.NewBool(true),
				FailureInterval:  30,
				MinUpTime:        120,
				MaxFailures:      3,
				MaxFailureWindow: 3600,
			},
		},
		HBDatastoreCandidatePolicy: string(types.ClusterDasConfigInfoHBDatastoreCandidateAllFeasibleDsWithUserPreference),
	}
	drs := types.ClusterDrsConfigInfo{
		Enabled:           types.NewBool(true),
		DefaultVmBehavior: types.DrsBehaviorFullyAutomated,
		VmotionRate:       3,
	}
	if cfg, ok := obj.ConfigurationEx.(*types.ClusterConfigInfoEx); ok {
		cfg.DasConfig = das
		cfg.DrsConfig = drs
	} else {
		obj.ConfigurationEx = &types.ClusterConfigInfoEx{DasConfig: das, DrsConfig: drs}
	}
	obj.Configuration.DasConfig = das
	obj.Configuration.DrsConfig = drs

	var snaps []hostSnap
	for _, h := range c.hosts {
		snaps = append(snaps, snapshotHostUnlocked(h.obj))
	}
	sum := clusterSummary(snaps)
	obj.Summary = sum
	obj.OverallStatus = sum.OverallStatus
}
