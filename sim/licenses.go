// Licences as a vCenter with a production estate reports them: vcsim has only the
// evaluation licence. sim/licenses.go adds a vSphere Enterprise Plus licence counted per
// CPU package (used: every host's packages) and a vCenter Server Standard licence that
// expires in 20 days, so "expiring soon" can be seen. Keys are fake. See docs/simulator.md.
package main

import (
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

func (s *sim) initLicenses() {
	content := simulator.Map.Get(vim25.ServiceInstance).(*simulator.ServiceInstance).Content
	if content.LicenseManager == nil {
		return
	}
	lm, ok := simulator.Map.Get(*content.LicenseManager).(*simulator.LicenseManager)
	if !ok {
		return
	}
	packages := int32(len(s.hosts) * hostCPUPkgs)
	expires := time.Now().Add(20 * 24 * time.Hour).UTC().Truncate(time.Second)
	simulator.Map.WithLock(lm, func() {
		lm.Licenses = append(lm.Licenses,
			types.LicenseManagerLicenseInfo{
				LicenseKey: "4H0AA-SIM00-00000-00000-1ESXP", EditionKey: "esx.enterprisePlus.cpuPackage",
				Name: "VMware vSphere 8 Enterprise Plus", Total: packages + 4, Used: packages,
				CostUnit: "cpuPackage",
				Properties: []types.KeyAnyValue{{Key: "ProductName", Value: "VMware ESX Server"},
					{Key: "ProductVersion", Value: "8.0"}},
			},
			types.LicenseManagerLicenseInfo{
				LicenseKey: "0M0AA-SIM00-00000-00000-2VCS0", EditionKey: "vc.standard.instance",
				Name: "VMware vCenter Server 8 Standard", Total: 1, Used: 1, CostUnit: "server",
				Properties: []types.KeyAnyValue{{Key: "ProductName", Value: "VMware VirtualCenter Server"},
					{Key: "expirationDate", Value: expires}},
			},
		)
	})
}
