package main

// vSphere HA settings and the VM facts HA decisions depend on, as vCenter keeps them.
//
// vcsim's ReconfigureComputeResource_Task applies only rules, groups and the DRS/HA per-VM
// override lists, and an edit of an HA override only merges restartPriority and its
// timeout. vCenter (modify=true) merges every set field of the spec into the cluster's
// configuration: dasConfig (enabled, hostMonitoring, vmMonitoring, defaultVmSettings with
// vmToolsMonitoringSettings, advanced options), the per-VM dasSettings, orchestration and
// vmOrchestration. The middleware calls haBeforeReconfigure before vcsim runs the task
// (validation, dasConfig/orchestration merge, full per-VM edit merge) and
// haAfterReconfigure after it (announce configurationEx and configuration, re-derive VM
// protection).
//
// VMs get summary.runtime.dasVmProtection (and runtime.dasVmProtection): protected while
// HA is enabled on their cluster and they are powered on, unless pinned through the API.
// POST /api/v1/vms/{name}/ha sets the facts vcsim cannot produce (config.managedBy, FT
// role, guest.appState, passthrough/vGPU/SR-IOV devices, a pinned dasProtected), and POST
// /api/v1/vms/{name}/power-off powers a VM off the way a given cause would, posting the
// events vCenter records for it (docs/simulator.md, "Power-off causes").

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

var (
	haServiceStates   = []string{"enabled", "disabled"}
	haVMMonitoring    = []string{"vmMonitoringDisabled", "vmMonitoringOnly", "vmAndAppMonitoring"}
	haPerVMMonitoring = []string{"vmMonitoringDisabled", "vmMonitoringOnly", "vmAndAppMonitoring", ""}
	haDefaultPrio     = []string{"disabled", "lowest", "low", "medium", "high", "highest"}
	haVMPrio          = []string{"disabled", "lowest", "low", "medium", "high", "highest", "clusterRestartPriority"}
	haIsolation       = []string{"none", "powerOff", "shutdown", "clusterIsolationResponse"}
	haReadiness       = []string{"none", "poweredOn", "guestHbStatusGreen", "appHbStatusGreen", "useClusterDefault"}
	haAppStates       = []string{"none", "appStateOk", "appStateNeedReset"}
	haDeviceKinds     = []string{"pciPassthrough", "vgpu", "sriov"}
	haVMKeys          = []string{"appState", "dasProtected", "devices", "ftRole", "io", "managedBy"}
	powerOffCauses    = []string{"guest", "user", "guestShutdownByUser", "isolation", "ftTerminated", "silent"}
)

func oneOf(v string, allowed []string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// validSettings is what vCenter refuses with InvalidArgument in a dasSettings value.
func validSettings(v *types.ClusterDasVmSettings, prios []string) bool {
	if v == nil {
		return true
	}
	if v.RestartPriority != "" && !oneOf(v.RestartPriority, prios) {
		return false
	}
	if v.IsolationResponse != "" && !oneOf(v.IsolationResponse, haIsolation) {
		return false
	}
	if t := v.VmToolsMonitoringSettings; t != nil {
		if !oneOf(t.VmMonitoring, haPerVMMonitoring) || t.MaxFailureWindow < -1 || t.FailureInterval < 0 ||
			t.MinUpTime < 0 || t.MaxFailures < 0 {
			return false
		}
	}
	return true
}

func validReadiness(r *types.ClusterVmReadiness) bool {
	return r == nil || r.ReadyCondition == "" || oneOf(r.ReadyCondition, haReadiness)
}

func checkReconfigure(spec *types.ClusterConfigSpecEx) types.BaseMethodFault {
	bad := func(prop string) types.BaseMethodFault { return &types.InvalidArgument{InvalidProperty: prop} }
	if d := spec.DasConfig; d != nil {
		if d.HostMonitoring != "" && !oneOf(d.HostMonitoring, haServiceStates) {
			return bad("dasConfig.hostMonitoring")
		}
		if d.VmMonitoring != "" && !oneOf(d.VmMonitoring, haVMMonitoring) {
			return bad("dasConfig.vmMonitoring")
		}
		if !validSettings(d.DefaultVmSettings, haDefaultPrio) {
			return bad("dasConfig.defaultVmSettings")
		}
	}
	for _, o := range spec.DasVmConfigSpec {
		if o.Info != nil && !validSettings(o.Info.DasSettings, haVMPrio) {
			return bad("dasVmConfigSpec.info.dasSettings")
		}
	}
	if o := spec.Orchestration; o != nil && !validReadiness(o.DefaultVmReadiness) {
		return bad("orchestration.defaultVmReadiness")
	}
	for _, o := range spec.VmOrchestrationSpec {
		if o.Info != nil && !validReadiness(&o.Info.VmReadiness) {
			return bad("vmOrchestrationSpec.info.vmReadiness")
		}
	}
	return nil
}

func mergeTools(dst *types.ClusterVmToolsMonitoringSettings, src *types.ClusterVmToolsMonitoringSettings) *types.ClusterVmToolsMonitoringSettings {
	out := types.ClusterVmToolsMonitoringSettings{}
	if dst != nil {
		out = *dst
	}
	if src == nil {
		return &out
	}
	if src.Enabled != nil {
		out.Enabled = src.Enabled
	}
	if src.VmMonitoring != "" {
		out.VmMonitoring = src.VmMonitoring
	}
	if src.ClusterSettings != nil {
		out.ClusterSettings = src.ClusterSettings
	}
	if src.FailureInterval != 0 {
		out.FailureInterval = src.FailureInterval
	}
	if src.MinUpTime != 0 {
		out.MinUpTime = src.MinUpTime
	}
	if src.MaxFailures != 0 {
		out.MaxFailures = src.MaxFailures
	}
	if src.MaxFailureWindow != 0 {
		out.MaxFailureWindow = src.MaxFailureWindow
	}
	return &out
}

// mergeSettings returns a new ClusterDasVmSettings: dst with every field src sets.
func mergeSettings(dst, src *types.ClusterDasVmSettings) *types.ClusterDasVmSettings {
	out := types.ClusterDasVmSettings{}
	if dst != nil {
		out = *dst
	}
	if src == nil {
		return &out
	}
	if src.RestartPriority != "" {
		out.RestartPriority = src.RestartPriority
	}
	if src.RestartPriorityTimeout != 0 {
		out.RestartPriorityTimeout = src.RestartPriorityTimeout
	}
	if src.IsolationResponse != "" {
		out.IsolationResponse = src.IsolationResponse
	}
	if src.VmToolsMonitoringSettings != nil {
		out.VmToolsMonitoringSettings = mergeTools(out.VmToolsMonitoringSettings, src.VmToolsMonitoringSettings)
	}
	if src.VmComponentProtectionSettings != nil {
		out.VmComponentProtectionSettings = src.VmComponentProtectionSettings
	}
	return &out
}

func mergeDas(dst *types.ClusterDasConfigInfo, src *types.ClusterDasConfigInfo) {
	if src.Enabled != nil {
		dst.Enabled = src.Enabled
	}
	if src.HostMonitoring != "" {
		dst.HostMonitoring = src.HostMonitoring
	}
	if src.VmMonitoring != "" {
		dst.VmMonitoring = src.VmMonitoring
	}
	if src.VmComponentProtecting != "" {
		dst.VmComponentProtecting = src.VmComponentProtecting
	}
	if src.AdmissionControlEnabled != nil {
		dst.AdmissionControlEnabled = src.AdmissionControlEnabled
	}
	if src.AdmissionControlPolicy != nil {
		dst.AdmissionControlPolicy = src.AdmissionControlPolicy
	}
	if src.FailoverLevel != 0 {
		dst.FailoverLevel = src.FailoverLevel
	}
	if src.HBDatastoreCandidatePolicy != "" {
		dst.HBDatastoreCandidatePolicy = src.HBDatastoreCandidatePolicy
	}
	if src.DefaultVmSettings != nil {
		dst.DefaultVmSettings = mergeSettings(dst.DefaultVmSettings, src.DefaultVmSettings)
	}
	// Advanced options merge by key; an empty value removes the option (as the vSphere
	// Client does when an option is deleted).
	for _, o := range src.Option {
		ov := o.GetOptionValue()
		kept := dst.Option[:0:0]
		for _, cur := range dst.Option {
			if cur.GetOptionValue().Key != ov.Key {
				kept = append(kept, cur)
			}
		}
		if str, ok := ov.Value.(string); !ok || str != "" {
			kept = append(kept, o)
		}
		dst.Option = kept
	}
}

// haBeforeReconfigure validates and applies what vcsim would drop. It returns a fault when
// vCenter would refuse the spec; nothing is changed then.
func (s *sim) haBeforeReconfigure(m *simulator.Method) types.BaseMethodFault {
	req, ok := m.Body.(*types.ReconfigureComputeResource_Task)
	if !ok {
		return nil
	}
	spec, ok := req.Spec.(*types.ClusterConfigSpecEx)
	if !ok {
		return nil
	}
	if f := checkReconfigure(spec); f != nil {
		return f
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clusterByRef[m.This]
	if c == nil {
		return nil
	}
	simulator.Map.WithLock(c.obj, func() {
		cfg, ok := c.obj.ConfigurationEx.(*types.ClusterConfigInfoEx)
		if !ok {
			return
		}
		if spec.DasConfig != nil {
			mergeDas(&cfg.DasConfig, spec.DasConfig)
		}
		// vcsim merges only restartPriority(Timeout) of an edit, and dereferences a nil
		// dasSettings: merge the whole edit first, so its own merge is a no-op.
		for _, o := range spec.DasVmConfigSpec {
			if o.Operation != types.ArrayUpdateOperationEdit || o.Info == nil {
				continue
			}
			for i := range cfg.DasVmConfig {
				if cfg.DasVmConfig[i].Key == o.Info.Key {
					cfg.DasVmConfig[i].DasSettings = mergeSettings(cfg.DasVmConfig[i].DasSettings, o.Info.DasSettings)
				}
			}
		}
		if o := spec.Orchestration; o != nil && o.DefaultVmReadiness != nil {
			cur := types.ClusterVmReadiness{}
			if cfg.Orchestration != nil && cfg.Orchestration.DefaultVmReadiness != nil {
				cur = *cfg.Orchestration.DefaultVmReadiness
			}
			if o.DefaultVmReadiness.ReadyCondition != "" {
				cur.ReadyCondition = o.DefaultVmReadiness.ReadyCondition
			}
			if o.DefaultVmReadiness.PostReadyDelay != 0 {
				cur.PostReadyDelay = o.DefaultVmReadiness.PostReadyDelay
			}
			cfg.Orchestration = &types.ClusterOrchestrationInfo{DefaultVmReadiness: &cur}
		}
		for _, o := range spec.VmOrchestrationSpec {
			var key types.ManagedObjectReference
			if o.Operation == types.ArrayUpdateOperationRemove {
				if r, ok := o.RemoveKey.(types.ManagedObjectReference); ok {
					key = r
				}
			} else if o.Info != nil {
				key = o.Info.Vm
			}
			kept := cfg.VmOrchestration[:0:0]
			for _, cur := range cfg.VmOrchestration {
				if cur.Vm != key {
					kept = append(kept, cur)
				}
			}
			if o.Operation != types.ArrayUpdateOperationRemove && o.Info != nil {
				kept = append(kept, *o.Info)
			}
			cfg.VmOrchestration = kept
		}
	})
	return nil
}

// haAfterReconfigure announces the cluster's configuration (vcsim changes it silently) and
// re-derives its VMs' HA protection.
func (s *sim) haAfterReconfigure(r types.ManagedObjectReference) {
	c := s.clusterByRef[r]
	if c == nil {
		return
	}
	simulator.Map.WithLock(c.obj, func() {
		cfg, ok := c.obj.ConfigurationEx.(*types.ClusterConfigInfoEx)
		if !ok {
			return
		}
		legacy := c.obj.Configuration
		legacy.DasConfig = cfg.DasConfig
		legacy.DasVmConfig = cfg.DasVmConfig
		legacy.DrsVmConfig = cfg.DrsVmConfig
		mapUpdate(c.obj, []types.PropertyChange{
			{Name: "configurationEx", Val: cfg},
			{Name: "configuration", Val: legacy},
		})
	})
	for _, t := range s.vms {
		if s.vmCluster(t) == c {
			s.deriveProtectionLocked(t)
		}
	}
	s.haAgentsLocked(c)
}

// haAgentsLocked makes the hosts' runtime.dasHostState follow dasConfig.enabled, as on a
// real vCenter: vSphere describes that state (ClusterDasFdmHostState) only for hosts of an
// HA-enabled cluster. Disabling HA unconfigures the agents (the state is unset); enabling
// it configures them and an election makes the first electable host master, the other
// live hosts connectedToMaster and the dead ones hostDown. vcsim kept the states of a
// cluster whose HA was disabled. A reconfigure that leaves HA as it was changes nothing.
// Caller holds s.mu.
func (s *sim) haAgentsLocked(c *clusterInfo) {
	snaps := s.snapshotHosts()
	configured := false
	for _, h := range c.hosts {
		configured = configured || snaps[h.ref].das != ""
	}
	enabled := clusterHAEnabled(c)
	if enabled == configured {
		return
	}
	if !enabled {
		for _, h := range c.hosts {
			s.updateHost(h, hostUpdate{setDas: true})
		}
		return
	}
	m := electMaster(c, snaps, nil)
	for _, h := range c.hosts {
		state := dasHostDown
		switch {
		case h == m:
			state = dasMaster
		case snaps[h.ref].alive():
			state = dasConnectedToMaster
		}
		s.updateHost(h, hostUpdate{setDas: true, das: dasState(state, m)})
	}
}

func (s *sim) vmCluster(t *vmTrack) *clusterInfo {
	h := vmHostRef(t.ref) // the object, not the reconciler's memory (set at the first pass)
	if h == nil {
		return nil
	}
	if t.hostIdx >= 0 && t.hostIdx < len(s.hosts) && s.hosts[t.hostIdx].ref == *h {
		return s.hosts[t.hostIdx].cluster
	}
	for _, hi := range s.hosts {
		if hi.ref == *h {
			return hi.cluster
		}
	}
	return nil
}

func clusterHAEnabled(c *clusterInfo) bool {
	enabled := false
	simulator.Map.WithLock(c.obj, func() {
		if cfg, ok := c.obj.ConfigurationEx.(*types.ClusterConfigInfoEx); ok && cfg.DasConfig.Enabled != nil {
			enabled = *cfg.DasConfig.Enabled
		}
	})
	return enabled
}

// haPinned holds dasProtected values set through the API (by VM); absent = derived.
var haPinned = map[types.ManagedObjectReference]bool{}

// deriveProtectionLocked sets dasVmProtection as an HA master reports it: protected while
// HA is enabled on the VM's cluster and the VM is powered on; unset outside HA clusters.
func (s *sim) deriveProtectionLocked(t *vmTrack) {
	c := s.vmCluster(t)
	var val *types.VirtualMachineRuntimeInfoDasProtectionState
	if c != nil && clusterHAEnabled(c) {
		on := false
		simulator.Map.WithLock(t.obj, func() { on = t.obj.Runtime.PowerState == vmPoweredOn })
		protected := on
		if p, ok := haPinned[t.ref]; ok {
			protected = p
		}
		val = &types.VirtualMachineRuntimeInfoDasProtectionState{DasProtected: protected}
	}
	simulator.Map.WithLock(t.obj, func() {
		cur := t.obj.Runtime.DasVmProtection
		if (cur == nil) == (val == nil) && (cur == nil || cur.DasProtected == val.DasProtected) {
			return
		}
		var v interface{} // an untyped nil unsets the property; a typed nil would not
		if val != nil {
			v = val
		}
		mapUpdate(t.obj, []types.PropertyChange{
			{Name: "runtime.dasVmProtection", Val: v},
			{Name: "summary.runtime.dasVmProtection", Val: v},
		})
	})
}

// haInitLocked derives every VM's protection; runs before serving.
func (s *sim) haInitLocked() {
	for _, t := range s.vms {
		s.deriveProtectionLocked(t)
	}
}

// ---- API -----------------------------------------------------------------------------

// routeHA serves /api/v1/vms/{name}/ha and /api/v1/vms/{name}/power-off.
func (s *sim) routeHA(r *http.Request, parts []string) (status int, body interface{}, err *apiError, ok bool) {
	if len(parts) != 3 || parts[0] != "vms" || (parts[2] != "ha" && parts[2] != "power-off") {
		return 0, nil, nil, false
	}
	if r.Method != http.MethodPost {
		return 0, nil, methodNotAllowed(r, "POST"), true
	}
	if parts[2] == "ha" {
		status, body, err = s.postVMHA(r, parts[1])
	} else {
		status, body, err = s.postPowerOff(r, parts[1])
	}
	return status, body, err, true
}

func vmDevice(kind string, key int32) types.BaseVirtualDevice {
	dev := types.VirtualDevice{Key: key, DeviceInfo: &types.Description{Label: kind, Summary: kind}}
	switch kind {
	case "vgpu":
		return &types.VirtualPCIPassthrough{VirtualDevice: withBacking(dev, &types.VirtualPCIPassthroughVmiopBackingInfo{Vgpu: "grid_t4-4q"})}
	case "sriov":
		return &types.VirtualSriovEthernetCard{VirtualEthernetCard: types.VirtualEthernetCard{VirtualDevice: dev}}
	default:
		return &types.VirtualPCIPassthrough{VirtualDevice: withBacking(dev, &types.VirtualPCIPassthroughDeviceBackingInfo{Id: "0000:3b:00.0"})}
	}
}

func withBacking(d types.VirtualDevice, b types.BaseVirtualDeviceBackingInfo) types.VirtualDevice {
	d.Backing = b
	return d
}

func (s *sim) postVMHA(r *http.Request, name string) (int, interface{}, *apiError) {
	body, aerr := readObject(r)
	if aerr != nil {
		return 0, nil, aerr
	}
	if len(body) == 0 {
		return 0, nil, errf(http.StatusBadRequest, "no properties given (allowed: %s)", strings.Join(haVMKeys, ", "))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, aerr := s.lookupVM(name)
	if aerr != nil {
		return 0, nil, aerr
	}
	// Validate everything first: a rejected request changes nothing.
	var apply []func()
	for _, k := range sortedKeys(body) {
		raw := body[k]
		switch k {
		case "dasProtected":
			if isNull(raw) {
				apply = append(apply, func() { delete(haPinned, t.ref) })
				continue
			}
			v, err := boolValue(k, raw)
			if err != nil {
				return 0, nil, err
			}
			apply = append(apply, func() { haPinned[t.ref] = v })
		case "managedBy":
			var info *types.ManagedByInfo
			if !isNull(raw) {
				var mb struct {
					ExtensionKey string `json:"extensionKey"`
					Type         string `json:"type"`
				}
				if err := json.Unmarshal(raw, &mb); err != nil || mb.ExtensionKey == "" {
					return 0, nil, errf(http.StatusBadRequest, "managedBy: expected null or {\"extensionKey\": \"...\", \"type\": \"...\"}")
				}
				info = &types.ManagedByInfo{ExtensionKey: mb.ExtensionKey, Type: mb.Type}
			}
			apply = append(apply, func() {
				simulator.Map.WithLock(t.obj, func() {
					mapUpdate(t.obj, []types.PropertyChange{
						{Name: "config.managedBy", Val: info},
						{Name: "summary.config.managedBy", Val: info},
					})
				})
			})
		case "ftRole":
			var ft *types.FaultToleranceConfigInfo
			state := types.VirtualMachineFaultToleranceStateNotConfigured
			if !isNull(raw) {
				var role int32
				if err := json.Unmarshal(raw, &role); err != nil || role < 1 || role > 3 {
					return 0, nil, errf(http.StatusBadRequest, "ftRole: expected null, 1 (primary) or 2-3 (secondary)")
				}
				ft = &types.FaultToleranceConfigInfo{Role: role}
				state = types.VirtualMachineFaultToleranceStateRunning
			}
			apply = append(apply, func() {
				simulator.Map.WithLock(t.obj, func() {
					mapUpdate(t.obj, []types.PropertyChange{
						{Name: "config.ftInfo", Val: ft},
						{Name: "summary.config.ftInfo", Val: ft},
						{Name: "runtime.faultToleranceState", Val: state},
						{Name: "summary.runtime.faultToleranceState", Val: state},
					})
				})
			})
		case "appState":
			v, err := enumValue(k, raw, haAppStates)
			if err != nil {
				return 0, nil, err
			}
			apply = append(apply, func() {
				simulator.Map.WithLock(t.obj, func() {
					mapUpdate(t.obj, []types.PropertyChange{{Name: "guest.appState", Val: v}})
				})
			})
		case "io": // sim/guest_io.go
			v, err := enumValue(k, raw, ioModes)
			if err != nil {
				return 0, nil, err
			}
			apply = append(apply, func() {
				if v == "auto" {
					delete(ioPinned, t.ref)
				} else {
					ioPinned[t.ref] = v
				}
			})
		case "devices":
			var kinds []string
			if err := json.Unmarshal(raw, &kinds); err != nil {
				return 0, nil, errf(http.StatusBadRequest, "devices: expected a list of %s", strings.Join(haDeviceKinds, ", "))
			}
			for _, kd := range kinds {
				if !oneOf(kd, haDeviceKinds) {
					return 0, nil, errf(http.StatusBadRequest, "devices: invalid kind %q (allowed: %s)", kd, strings.Join(haDeviceKinds, ", "))
				}
			}
			apply = append(apply, func() {
				simulator.Map.WithLock(t.obj, func() {
					if t.obj.Config == nil {
						return
					}
					devs := append([]types.BaseVirtualDevice{}, t.obj.Config.Hardware.Device...)
					for i, kd := range kinds {
						devs = append(devs, vmDevice(kd, int32(13000+len(devs)+i)))
					}
					mapUpdate(t.obj, []types.PropertyChange{{Name: "config.hardware.device", Val: devs}})
				})
			})
		default:
			return 0, nil, unknownKey(k, haVMKeys)
		}
	}
	for _, f := range apply {
		f()
	}
	s.deriveProtectionLocked(t)
	return http.StatusOK, s.haEntry(t), nil
}

func (s *sim) haEntry(t *vmTrack) map[string]interface{} {
	out := map[string]interface{}{"name": t.name, "moid": t.ref.Value}
	simulator.Map.WithLock(t.obj, func() {
		out["powerState"] = t.obj.Runtime.PowerState
		out["dasProtected"] = nil
		if p := t.obj.Runtime.DasVmProtection; p != nil {
			out["dasProtected"] = p.DasProtected
		}
		out["managedBy"] = nil
		out["ftRole"] = nil
		if cfg := t.obj.Config; cfg != nil {
			if cfg.ManagedBy != nil {
				out["managedBy"] = map[string]string{"extensionKey": cfg.ManagedBy.ExtensionKey, "type": cfg.ManagedBy.Type}
			}
			if cfg.FtInfo != nil {
				out["ftRole"] = cfg.FtInfo.GetFaultToleranceConfigInfo().Role
			}
		}
		out["io"] = "auto"
		if m, ok := ioPinned[t.ref]; ok {
			out["io"] = m
		}
		out["appState"] = ""
		if t.obj.Guest != nil {
			out["appState"] = t.obj.Guest.AppState
		}
	})
	return out
}

// postPowerOff powers a running VM off as `cause` would and posts what vCenter records:
//
//   - guest: the guest OS shut itself down (shutdown inside the VM): VmPoweredOffEvent
//     with no user (no session caused it);
//   - user: a person's PowerOffVM_Task: VmStoppingEvent + VmPoweredOffEvent by that user;
//   - guestShutdownByUser: a person's ShutdownGuest: VmGuestShutdownEvent by that user,
//     then the power-off (VmPoweredOffEvent, no user);
//   - isolation: vSphere HA's isolation response: VmShutdownOnIsolationEvent (a
//     VmPoweredOffEvent) with no user;
//   - ftTerminated: VmFaultToleranceVmTerminatedEvent, then the power-off;
//   - silent: no event at all (what is left when events expired or were never written).
func (s *sim) postPowerOff(r *http.Request, name string) (int, interface{}, *apiError) {
	body, aerr := readObject(r)
	if aerr != nil {
		return 0, nil, aerr
	}
	cause, user := "", "alice"
	for _, k := range sortedKeys(body) {
		switch k {
		case "cause":
			v, err := enumValue(k, body[k], powerOffCauses)
			if err != nil {
				return 0, nil, err
			}
			cause = v
		case "user":
			v, err := stringValue(k, body[k])
			if err != nil {
				return 0, nil, err
			}
			user = v
		default:
			return 0, nil, unknownKey(k, []string{"cause", "user"})
		}
	}
	if cause == "" {
		return 0, nil, errf(http.StatusBadRequest, "cause is required (allowed: %s)", strings.Join(powerOffCauses, ", "))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, aerr := s.lookupVM(name)
	if aerr != nil {
		return 0, nil, aerr
	}
	var power types.VirtualMachinePowerState
	var ev types.VmEvent
	simulator.Map.WithLock(t.obj, func() {
		power = t.obj.Runtime.PowerState
		ev = s.vmEvent(t)
	})
	if power != vmPoweredOn {
		return 0, nil, errf(http.StatusConflict, "vm %q is %s, not poweredOn", name, power)
	}
	off := &types.VmPoweredOffEvent{VmEvent: ev}
	switch cause {
	case "guest":
		s.postEventsAs("", off)
	case "user":
		s.postEventsAs(user, &types.VmStoppingEvent{VmEvent: ev}, off)
	case "guestShutdownByUser":
		s.postEventsAs(user, &types.VmGuestShutdownEvent{VmEvent: ev})
		s.postEventsAs("", off)
	case "isolation":
		iso := &types.VmShutdownOnIsolationEvent{VmPoweredOffEvent: types.VmPoweredOffEvent{VmEvent: ev}, ShutdownResult: "shutdown"}
		if ev.Host != nil {
			iso.IsolatedHost = *ev.Host
		}
		s.postEventsAs("", iso)
	case "ftTerminated":
		s.postEventsAs("", &types.VmFaultToleranceVmTerminatedEvent{VmEvent: ev, Reason: "vmFailure"}, off)
	}
	s.setVMPower(t, vmPoweredOff)
	s.reconcileOneLocked(t.ref)
	s.deriveProtectionLocked(t)
	return http.StatusOK, s.haEntry(t), nil
}

// vmEvent is the VmEvent base for t (caller holds the VM's lock).
func (s *sim) vmEvent(t *vmTrack) types.VmEvent {
	e := types.VmEvent{Event: types.Event{
		Vm: &types.VmEventArgument{Vm: t.ref, EntityEventArgument: types.EntityEventArgument{Name: t.name}},
	}}
	for _, h := range s.hosts {
		if h.ref == t.host {
			he := s.hostEvent(h)
			e.Datacenter, e.ComputeResource, e.Host = he.Datacenter, he.ComputeResource, he.Host
		}
	}
	return e
}

// postEventsAs posts events with userName = user ("" for events no session caused).
func (s *sim) postEventsAs(user string, events ...types.BaseEvent) {
	em := simulator.Map.EventManager()
	sess := &simulator.Session{UserSession: types.UserSession{UserName: user}, Registry: simulator.NewRegistry()}
	ctx := &simulator.Context{Context: context.Background(), Map: simulator.Map, Session: sess}
	defer func() { _ = recover() }() // events are a nicety; never take the API down
	simulator.Map.WithLock(em, func() {
		for _, e := range events {
			em.PostEvent(ctx, &types.PostEvent{EventToPost: e})
		}
	})
}

// haDeriveOneLocked re-derives one VM's protection after a call on it (power changes).
func (s *sim) haDeriveOneLocked(r types.ManagedObjectReference) {
	if t := s.vms[r]; t != nil {
		s.deriveProtectionLocked(t)
	}
}
