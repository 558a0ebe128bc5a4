"""The fault-domain group: failures larger than one host.

A whole fault domain down, more failed hosts than the cluster's HA failover level, or many
hosts at once: restarting VMs host by host would then do harm or could not succeed, so
only a fault domain down remediates (``restart_fault_domain_vms``: the remediator acts
once its own live read confirms every host down, remediator/domain_failure.py), and two
of them exist mainly to stop the host-level reactions
(``alertmanager.py``: a down fault domain silences its hosts' and VMs' alerts, a mass
failure its cluster's ``restart_host_vms``). ``config.py`` checks that their ``for`` is
short enough for them to fire before the host alerts they inhibit.
"""

from __future__ import annotations

from .config import Settings
from .model import Alert
from .promql import CLUSTER, pct, q

GROUP = "vsphere-fault-domain"


def alerts(s: Settings) -> list[Alert]:
    return [
        Alert(
            name="VsphereFaultDomainDown",
            group=GROUP,
            scope="fault_domain",
            expr=q(
                """
                vsphere_fault_domain:host_failed:sum == vsphere_fault_domain:host_up:count
                and on (vcenter, cluster_id, fault_domain) (vsphere_fault_domain:host_up:count >= $min)
                """,  # noqa: E501
                min=s.fd_min_hosts,
            ),
            for_=s.fd_down_for,
            severity="critical",
            # Not inhibited by VsphereClusterMassHostFailure (that targets restart_host_vms):
            # the remediator restarts the domain's VMs only once its own live read confirms
            # every host down (HA hostDown or powered off), never for a partition.
            remediation="restart_fault_domain_vms",
            summary="Fault domain {{ $labels.fault_domain }} of cluster {{ $labels.cluster }} "
            "is down",
            description="All {{ $value }} hosts of fault domain {{ $labels.fault_domain }} in "
            f"{CLUSTER} have failed for {s.fd_down_for.text}. Its host and VM alerts are "
            "inhibited. The remediator restarts its VMs elsewhere only once a live read "
            "confirms every host down (vSphere HA hostDown or powered off); a partition "
            "(HA still sees a host alive) or an unconfirmed silence is left to you.",
        ),
        Alert(
            name="VsphereClusterFailoverLevelExceeded",
            group=GROUP,
            scope="cluster",
            expr=q(
                """
                vsphere_cluster:host_failed:sum
                  > on (vcenter, cluster_id) group_left ()
                    max by (vcenter, cluster_id) (vsphere_cluster_ha_failover_level)
                and on (vcenter, cluster_id) (vsphere_cluster_ha_admission_control_enabled == 1)
                """  # noqa: E501
            ),
            for_=s.failover_level_exceeded_for,
            severity="critical",
            remediation="none",
            summary="Cluster {{ $labels.cluster }} lost more hosts than it tolerates",
            description="{{ $value }} hosts of " + CLUSTER + " have failed for "
            f"{s.failover_level_exceeded_for.text}, more than its HA failover level. Not all "
            "VMs may restart.",
        ),
        Alert(
            name="VsphereClusterMassHostFailure",
            group=GROUP,
            scope="cluster",
            expr=q(
                """
                vsphere_cluster:host_failed:sum >= 2
                and (
                    vsphere_cluster:host_failed:sum > $hosts
                  or
                    vsphere_cluster:host_failed:sum / vsphere_cluster:host_up:count > $share
                )
                """,
                hosts=s.mass_max_hosts,
                share=f"{s.mass_max_share:g}",
            ),
            for_=s.mass_for,
            severity="critical",
            remediation="none",
            summary="{{ $value }} hosts failed at once in {{ if $labels.cluster }}cluster "
            "{{ $labels.cluster }}{{ else }}vCenter {{ $labels.vcenter }} (standalone){{ end }}",
            description="{{ $value }} hosts have failed at once in {{ if $labels.cluster }}"
            + CLUSTER
            + "{{ else }}the standalone hosts of vCenter {{ $labels.vcenter }}{{ end }} (limit "
            f"{s.mass_max_hosts} hosts or {pct(s.mass_max_share)}). Automatic host restarts "
            "there are inhibited; people decide.",
        ),
    ]
