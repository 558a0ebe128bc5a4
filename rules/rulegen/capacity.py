"""The capacity group: could the cluster absorb a failure, and do the datastores have room?

Forward-looking alerts: nothing has failed yet, but a host or fault-domain failure would
leave VMs that cannot restart. They read the capacity aggregates of ``recording.py``, which
the dashboards share, so a dashboard's headroom and this alert never disagree.
"""

from __future__ import annotations

from .config import Settings
from .model import Alert
from .promql import CLUSTER, pct, q

GROUP = "vsphere-capacity"


def _capacity_expr(largest: str, util: str) -> str:
    """Demand / (capacity without the largest host or fault domain x utilization) > 1, per
    resource, for clusters with at least two hosts (or fault domains) to fail over between."""
    if largest == "host":
        gate = 'vsphere_cluster:host_up:sum{cluster_id!=""} >= 2'
        cap_max = "vsphere_cluster:host_{r}_capacity_{u}:max"
    else:
        gate = 'vsphere_cluster:fault_domains:count{cluster_id!=""} >= 2'
        cap_max = "vsphere_cluster:fault_domain_{r}_capacity_{u}:max"
    branches = []
    for resource, unit in (("memory", "bytes"), ("cpu", "hertz")):
        branches.append(
            q(
                """
                label_replace(
                    vsphere_cluster:host_${r}_usage_${u}:sum
                    / ((vsphere_cluster:host_${r}_capacity_${u}:sum - $biggest) * $util)
                  > 1
                  and on (vcenter, cluster_id) ($gate),
                  "resource", "$r", "", ""
                )
                """,
                r=resource,
                u=unit,
                biggest=cap_max.format(r=resource, u=unit),
                util=util,
                gate=gate,
            )
        )
    return "\nor\n".join(branches)


def alerts(s: Settings) -> list[Alert]:
    util = pct(s.max_utilization)
    return [
        Alert(
            name="VsphereClusterHostFailoverCapacityLow",
            group=GROUP,
            scope="cluster",
            expr=_capacity_expr("host", f"{s.max_utilization:g}"),
            for_=s.failover_headroom_for,
            severity="warning",
            remediation="none",
            summary="Cluster {{ $labels.cluster }} has no N+1 {{ $labels.resource }} headroom",
            description="Restarting the VMs of the largest host of " + CLUSTER + " would "
            "need {{ $value | humanizePercentage }} of the {{ $labels.resource }} left on the "
            f"other hosts (at {util} utilization).",
        ),
        Alert(
            name="VsphereClusterFaultDomainFailoverCapacityLow",
            group=GROUP,
            scope="cluster",
            expr=_capacity_expr("fault_domain", f"{s.max_utilization:g}"),
            for_=s.failover_headroom_for,
            severity="warning",
            remediation="none",
            summary="Cluster {{ $labels.cluster }} could not absorb its largest fault domain",
            description="Restarting the VMs of the largest fault domain of " + CLUSTER + " "
            "would need {{ $value | humanizePercentage }} of the {{ $labels.resource }} left in "
            f"the other fault domains (at {util} utilization).",
        ),
        Alert(
            name="VsphereDatastoreFreeSpaceLow",
            group=GROUP,
            scope="datastore",
            expr=q(
                """
                vsphere_datastore:free:ratio < $ratio
                and on (vcenter, datastore_id) (vsphere_datastore_accessible == 1)
                """,
                ratio=f"{s.ds_free_min_ratio:g}",
            ),
            for_=s.ds_free_for,
            severity="warning",
            remediation="none",
            summary="Datastore {{ $labels.datastore }} is low on space",
            description="Datastore {{ $labels.datastore }} (vCenter {{ $labels.vcenter }}) has "
            "{{ $value | humanizePercentage }} free (limit " + pct(s.ds_free_min_ratio) + "); "
            "VMs may fail to power on there.",
        ),
        Alert(
            name="VsphereDatastoreInaccessible",
            group=GROUP,
            scope="datastore",
            expr="max by (vcenter, datastore_id, datastore) (vsphere_datastore_accessible) == 0",
            for_=s.ds_inaccessible_for,
            severity="critical",
            remediation="none",
            summary="Datastore {{ $labels.datastore }} is inaccessible",
            description="Datastore {{ $labels.datastore }} (vCenter {{ $labels.vcenter }}) has "
            f"been inaccessible for {s.ds_inaccessible_for.text}; its VMs stall and cannot "
            "restart.",
        ),
    ]
