"""The HA-master group: is vSphere HA itself able to protect a cluster?

Without a master (or with several, on a partitioned network) vSphere HA restarts nothing,
and the stack's remediator is the only protection left. These alerts are advisory only
(``remediation="none"``): the fix is a person's, on the network or the HA agents.
"""

from __future__ import annotations

from .config import Settings
from .model import Alert
from .promql import CLUSTER, CLUSTER_, q

GROUP = "vsphere-ha-master"


def alerts(s: Settings) -> list[Alert]:
    return [
        Alert(
            name="VsphereClusterHaNoMaster",
            group=GROUP,
            scope="cluster",
            expr=q(
                """
                max by (vcenter, cluster_id, cluster) (vsphere_cluster_ha_enabled) == 1
                and on (vcenter, cluster_id) (vsphere_cluster_ha_masters == 0)
                unless on (vcenter, cluster_id) (vsphere_cluster_hosts_ha_state{state="election"} > 0)
                and on (vcenter, cluster_id) (vsphere_cluster:host_up:sum > 0)
                """  # noqa: E501
            ),
            for_=s.no_master_for,
            severity="warning",
            remediation="none",
            summary="vSphere HA has no master in cluster {{ $labels.cluster }}",
            description=f"vSphere HA is enabled on {CLUSTER} but there has been no master and "
            f"no election for {s.no_master_for.text}. vSphere HA protects nothing there.",
        ),
        Alert(
            name="VsphereClusterHaElectionTooLong",
            group=GROUP,
            scope="cluster",
            expr=q(
                """
                max by (vcenter, cluster_id, cluster) (vsphere_cluster_hosts_ha_state{state="election"}) > 0
                and on (vcenter, cluster_id) (vsphere_cluster_ha_masters == 0)
                and on (vcenter, cluster_id) (vsphere_cluster_ha_enabled == 1)
                """  # noqa: E501
            ),
            for_=s.election_max,
            severity="warning",
            remediation="none",
            summary="The vSphere HA election in cluster {{ $labels.cluster }} takes too long",
            description="{{ $value }} hosts of " + CLUSTER + " have been electing a vSphere "
            f"HA master for {s.election_max.text}. vSphere HA protects nothing there meanwhile.",
        ),
        Alert(
            name="VsphereClusterHaMultipleMasters",
            group=GROUP,
            scope="cluster",
            expr=q(
                """
                max by (vcenter, cluster_id, cluster) (vsphere_cluster_ha_masters) > 1
                and on (vcenter, cluster_id) (vsphere_cluster_ha_enabled == 1)
                """
            ),
            for_=s.multiple_masters_for,
            severity="warning",
            remediation="none",
            summary="Cluster {{ $labels.cluster }} has {{ $value }} vSphere HA masters",
            description=f"{CLUSTER_} has had {{{{ $value }}}} vSphere "
            f"HA masters for {s.multiple_masters_for.text}: its network is partitioned.",
        ),
    ]
