package main

// What a VM's inventory identity is made of besides the VM object, and what vCenter does
// with it when the VM is unregistered: DRS VM groups, VM-VM rules and the per-VM DRS and
// HA overrides of its cluster name the VM by its moid; vCenter drops the VM from all of
// them when it leaves the inventory.
// vcsim leaves the stale references, so a client restoring a re-registered VM's identity
// would see memberships that vCenter no longer has. forgetVM does what vCenter does.

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

func without(refs []types.ManagedObjectReference, r types.ManagedObjectReference) []types.ManagedObjectReference {
	var out []types.ManagedObjectReference
	for _, x := range refs {
		if x != r {
			out = append(out, x)
		}
	}
	return out
}

// forgetVM removes a VM about to be unregistered from its cluster's groups, rules and
// overrides.
func (s *sim) forgetVM(r types.ManagedObjectReference) {
	h := vmHostRef(r)
	if h == nil {
		return
	}
	hs, ok := simulator.Map.Get(*h).(*simulator.HostSystem)
	if !ok || hs.Parent == nil {
		return
	}
	cluster, ok := simulator.Map.Get(*hs.Parent).(*simulator.ClusterComputeResource)
	if !ok {
		return
	}
	simulator.Map.WithLock(cluster, func() {
		cfg, ok := cluster.ConfigurationEx.(*types.ClusterConfigInfoEx)
		if !ok {
			return
		}
		for _, g := range cfg.Group {
			if vg, ok := g.(*types.ClusterVmGroup); ok {
				vg.Vm = without(vg.Vm, r)
			}
		}
		var rules []types.BaseClusterRuleInfo
		for _, rule := range cfg.Rule {
			switch x := rule.(type) {
			case *types.ClusterAffinityRuleSpec:
				x.Vm = without(x.Vm, r)
			case *types.ClusterAntiAffinityRuleSpec:
				x.Vm = without(x.Vm, r)
			}
			rules = append(rules, rule)
		}
		cfg.Rule = rules
		var das []types.ClusterDasVmConfigInfo
		for _, o := range cfg.DasVmConfig {
			if o.Key != r {
				das = append(das, o)
			}
		}
		cfg.DasVmConfig = das
		var drs []types.ClusterDrsVmConfigInfo
		for _, o := range cfg.DrsVmConfig {
			if o.Key != r {
				drs = append(drs, o)
			}
		}
		cfg.DrsVmConfig = drs
		simulator.Map.Update(cluster, []types.PropertyChange{{Name: "configurationEx", Val: cfg}})
	})
}
