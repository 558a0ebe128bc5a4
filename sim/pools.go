// Resource pools and vApps: vcsim gives each cluster only its root pool ("Resources") and
// leaves pool quick stats empty. sim/pools.go adds, per cluster, a child pool "Production"
// (CPU reservation 4,000 MHz, memory reservation 8 GiB, memory limit 64 GiB, high shares)
// and a vApp "App-<cluster>" under it, and fills every pool's summary.quickStats from the
// VMs it holds once they are first reconciled (root pools: all of the cluster's VMs), and
// gives each pool a summary of its own (vcsim's pools share one). See docs/simulator.md.
package main

import (
	"context"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func allocation(reservation, limit int64, level types.SharesLevel) *types.ResourceAllocationInfo {
	expandable := true
	return &types.ResourceAllocationInfo{
		Reservation: &reservation, Limit: &limit, ExpandableReservation: &expandable,
		Shares: &types.SharesInfo{Level: level},
	}
}

// initPools creates the demo pools and vApps through the SOAP API, in process.
func (s *sim) initPools() error {
	ctx := context.Background()
	client, err := vim25.NewClient(ctx, s.model.Service)
	if err != nil {
		return err
	}
	for _, c := range s.clusters {
		if c.obj.ResourcePool == nil {
			continue
		}
		root := object.NewResourcePool(client, *c.obj.ResourcePool)
		spec := types.ResourceConfigSpec{
			CpuAllocation:    *allocation(4000, -1, types.SharesLevelHigh),
			MemoryAllocation: *allocation(8192, 65536, types.SharesLevelHigh),
		}
		child, err := root.Create(ctx, "Production", spec)
		if err != nil {
			return err
		}
		vspec := types.VAppConfigSpec{}
		rspec := types.ResourceConfigSpec{
			CpuAllocation:    *allocation(0, -1, types.SharesLevelNormal),
			MemoryAllocation: *allocation(0, -1, types.SharesLevelNormal),
		}
		folder := object.NewFolder(client, c.dc.vmFolder)
		if _, err := child.CreateVApp(ctx, "App-"+c.name, rspec, vspec, folder); err != nil {
			return err
		}
	}
	return nil
}

// refreshPoolStats sets each pool's quick stats from the VMs in it (and its children).
func (s *sim) refreshPoolStats() {
	type stats struct{ cpu, guest, host int64 }
	own := map[types.ManagedObjectReference]*stats{}
	parent := map[types.ManagedObjectReference]types.ManagedObjectReference{}
	type pool struct {
		obj mo.Reference
		rp  *mo.ResourcePool
	}
	var pools []pool
	for _, kind := range []string{"ResourcePool", "VirtualApp"} {
		for _, obj := range simulator.Map.All(kind) {
			var rp *mo.ResourcePool
			switch p := obj.(type) {
			case *simulator.ResourcePool:
				rp = &p.ResourcePool
			case *simulator.VirtualApp:
				rp = &p.ResourcePool
			default:
				continue
			}
			pools = append(pools, pool{obj, rp})
			st := &stats{}
			for _, ref := range rp.Vm {
				if vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine); ok {
					st.cpu += int64(vm.Summary.QuickStats.OverallCpuUsage)
					st.guest += int64(vm.Summary.QuickStats.GuestMemoryUsage)
					st.host += int64(vm.Summary.QuickStats.HostMemoryUsage)
				}
			}
			own[rp.Self] = st
			if rp.Parent != nil {
				parent[rp.Self] = *rp.Parent
			}
		}
	}
	total := map[types.ManagedObjectReference]stats{}
	for ref, st := range own {
		for r, depth := ref, 0; depth < 32; depth++ {
			t := total[r]
			t.cpu, t.guest, t.host = t.cpu+st.cpu, t.guest+st.guest, t.host+st.host
			total[r] = t
			next, ok := parent[r]
			if _, isPool := own[next]; !ok || !isPool {
				break
			}
			r = next
		}
	}
	for _, p := range pools {
		rp := p.rp
		t := total[rp.Self]
		simulator.Map.WithLock(p.obj, func() {
			// vcsim's pools share one summary object (the last pool created names it);
			// vCenter gives each pool its own: copy it per pool.
			summary := &types.ResourcePoolSummary{Name: rp.Name, Config: rp.Config}
			if old, ok := rp.Summary.(*types.ResourcePoolSummary); ok && old != nil && old.Runtime.Cpu.MaxUsage != 0 {
				summary.Runtime = old.Runtime
			}
			summary.QuickStats = &types.ResourcePoolQuickStats{
				OverallCpuUsage: t.cpu, GuestMemoryUsage: t.guest, HostMemoryUsage: t.host,
			}
			rp.Summary = summary
			simulator.Map.Update(p.obj, []types.PropertyChange{{Name: "summary", Val: summary}})
		})
	}
}
