"""The shared aggregates: per-host up/failed flags, cluster and fault-domain sums, capacity,
the per-VM HA monitoring settings, datastore free space.

Several alert groups (hosts, fault domains, capacity, VMs) and the Grafana dashboards read
the same numbers; computing them once as recording rules keeps the alerts and the graphs in
agreement and the alert expressions short. Alerts reading these series are one evaluation
late, which ``config.py`` accounts for in its cross-group checks.
"""

from __future__ import annotations

from .config import Duration, Settings
from .model import Record, RecordingGroup
from .promql import HOST_IN_MAINTENANCE, indent, q


def _vm_setting_expr(cluster_metric: str, default: Duration, use_cluster: bool) -> str:
    """A VM-monitoring setting per VM: its cluster's value when the cluster reports one (and
    ``use_cluster``), else the configured default."""
    if not use_cluster:
        return f"max by (vcenter, vm_id) (vsphere_vm_info) * 0 + {default.number}"
    return q(
        """
        max by (vcenter, vm_id) (
            vsphere_vm_info * 0
            + on (vcenter, cluster_id) group_left ()
              (max by (vcenter, cluster_id) ($metric) > 0)
          or
            vsphere_vm_info * 0 + $default
        )
        """,
        metric=cluster_metric,
        default=default.number,
    )


def _host_flag(flag: str) -> str:
    """A 0/1 flag (one series per vcenter/host_id) for every host vCenter knows
    (``vsphere_host_info``), 0 where the flag has no series, with the host's placement; hosts
    in maintenance mode are left out."""
    return (
        "(\n"
        f"{indent(flag, 4)}\n"
        "  or on (vcenter, host_id)\n"
        "    max by (vcenter, host_id) (vsphere_host_info) * 0\n"
        ")\n"
        "* on (vcenter, host_id) group_left (host, cluster_id, cluster, fault_domain)\n"
        "  max by (vcenter, host_id, host, cluster_id, cluster, fault_domain) (vsphere_host_info)\n"
        f"unless on (vcenter, host_id) ({HOST_IN_MAINTENANCE})"
    )


def recording(s: Settings) -> list[RecordingGroup]:
    """Recording rules by group; within a group, rules are evaluated in order, so each rule
    only uses rules defined above it (or plain metrics)."""
    hosts: list[Record] = [
        Record(
            "vsphere_host:up",
            _host_flag(
                'max by (vcenter, host_id) (vsphere_host_connection_state{state="connected"})\n'
                "* on (vcenter, host_id)\n"
                '  max by (vcenter, host_id) (vsphere_host_power_state{state="poweredOn"})'
            ),
        ),
        Record(
            "vsphere_host:failed",
            _host_flag(
                "max by (vcenter, host_id) (\n"
                '    vsphere_host_connection_state{state="notResponding"}\n'
                "  or\n"
                '    vsphere_host_power_state{state="poweredOff"}\n'
                ")"
            ),
        ),
        Record(
            "vsphere_cluster:host_up:count",
            "count by (vcenter, cluster_id, cluster) (vsphere_host:up)",
        ),
        Record(
            "vsphere_cluster:host_up:sum",
            "sum by (vcenter, cluster_id, cluster) (vsphere_host:up)",
        ),
        Record(
            "vsphere_cluster:host_failed:sum",
            "sum by (vcenter, cluster_id, cluster) (vsphere_host:failed)",
        ),
        Record(
            "vsphere_cluster:host_maintenance_mode:sum",
            q(
                """
                sum by (vcenter, cluster_id, cluster) (
                    max by (vcenter, host_id) (vsphere_host_maintenance_mode)
                  * on (vcenter, host_id) group_left (cluster_id, cluster)
                    max by (vcenter, host_id, cluster_id, cluster) (vsphere_host_info)
                )
                """
            ),
        ),
        Record(
            "vsphere_fault_domain:host_up:count",
            'count by (vcenter, cluster_id, cluster, fault_domain) (vsphere_host:up{fault_domain!=""})',  # noqa: E501
        ),
        Record(
            "vsphere_fault_domain:host_up:sum",
            'sum by (vcenter, cluster_id, cluster, fault_domain) (vsphere_host:up{fault_domain!=""})',  # noqa: E501
        ),
        Record(
            "vsphere_fault_domain:host_failed:sum",
            'sum by (vcenter, cluster_id, cluster, fault_domain) (vsphere_host:failed{fault_domain!=""})',  # noqa: E501
        ),
        Record(
            "vsphere_cluster:fault_domains:count",
            "count by (vcenter, cluster_id, cluster) (vsphere_fault_domain:host_up:count)",
        ),
    ]
    for resource, unit in (("cpu", "hertz"), ("memory", "bytes")):
        cap = f"vsphere_host_{resource}_capacity_{unit}"
        use = f"vsphere_host_{resource}_usage_{unit}"
        up_join = (
            "* on (vcenter, host_id) group_left (cluster_id, cluster, fault_domain)"
            " (vsphere_host:up == 1)"
        )
        c = f"vsphere_cluster:host_{resource}_capacity_{unit}"
        u = f"vsphere_cluster:host_{resource}_usage_{unit}"
        fd = f"vsphere_fault_domain:host_{resource}_capacity_{unit}:sum"
        fd_max = f"vsphere_cluster:fault_domain_{resource}_capacity_{unit}:max"
        hosts += [
            Record(
                f"{c}:sum",
                f"sum by (vcenter, cluster_id, cluster) (\n"
                f"  max by (vcenter, host_id) ({cap})\n  {up_join}\n)",
            ),
            Record(
                f"{c}:max",
                f"max by (vcenter, cluster_id, cluster) (\n"
                f"  max by (vcenter, host_id) ({cap})\n  {up_join}\n)",
            ),
            Record(
                f"{u}:sum",
                f"sum by (vcenter, cluster_id, cluster) (\n"
                f"  max by (vcenter, host_id) ({use})\n  {up_join}\n)",
            ),
            Record(f"vsphere_cluster:{resource}_utilization:ratio", f"{u}:sum / {c}:sum"),
            Record(
                f"vsphere_cluster:{resource}_headroom_{unit}:n_plus_1",
                f"{c}:sum - {c}:max - {u}:sum",
            ),
            Record(
                fd,
                f"sum by (vcenter, cluster_id, cluster, fault_domain) (\n"
                f"  max by (vcenter, host_id) ({cap})\n"
                f"  * on (vcenter, host_id) group_left (cluster_id, cluster, fault_domain)"
                f' (vsphere_host:up{{fault_domain!=""}} == 1)\n)',
            ),
            Record(fd_max, f"max by (vcenter, cluster_id, cluster) ({fd})"),
            Record(
                f"vsphere_cluster:{resource}_headroom_{unit}:fault_domain",
                f"{c}:sum - {fd_max} - {u}:sum",
            ),
        ]

    interval_expr = _vm_setting_expr(
        "vsphere_cluster_ha_heartbeat_failure_interval_seconds",
        s.failure_interval,
        s.use_cluster_settings,
    )
    uptime_expr = _vm_setting_expr(
        "vsphere_cluster_ha_min_uptime_seconds", s.min_uptime, s.use_cluster_settings
    )

    vm_cluster = (
        "* on (vcenter, vm_id) group_left (cluster_id, cluster)\n"
        "  max by (vcenter, vm_id, cluster_id, cluster) (vsphere_vm_info)"
    )
    vms = [
        Record("vsphere_vm:ha_failure_interval_seconds", interval_expr),
        Record("vsphere_vm:ha_min_uptime_seconds", uptime_expr),
        Record(
            "vsphere_cluster:vm_power_state:sum",
            "sum by (vcenter, cluster_id, cluster, state) (\n"
            "  max by (vcenter, vm_id, state) (vsphere_vm_power_state)\n"
            f"{indent(vm_cluster)}\n)",
        ),
        Record(
            "vsphere_cluster:vm_ha_protected:sum",
            "sum by (vcenter, cluster_id, cluster) (\n"
            "  max by (vcenter, vm_id) (vsphere_vm_ha_protected)\n"
            f"{indent(vm_cluster)}\n)",
        ),
        Record(
            "vsphere_cluster:vm_guest_heartbeat_status:sum",
            "sum by (vcenter, cluster_id, cluster, status) (\n"
            "  max by (vcenter, vm_id, status) (vsphere_vm_guest_heartbeat_status)\n"
            f"{indent(vm_cluster)}\n)",
        ),
        Record(
            "vsphere_cluster:vm_app_heartbeat_status:sum",
            "sum by (vcenter, cluster_id, cluster, status) (\n"
            "  max by (vcenter, vm_id, status) (vsphere_vm_app_heartbeat_status)\n"
            f"{indent(vm_cluster)}\n)",
        ),
    ]
    datastores = [
        Record(
            "vsphere_datastore:free:ratio",
            q(
                """
                max by (vcenter, datastore_id, datastore) (vsphere_datastore_free_bytes)
                / max by (vcenter, datastore_id, datastore) (vsphere_datastore_capacity_bytes)
                """
            ),
        ),
    ]
    return [
        RecordingGroup("vsphere-hosts.rules", hosts),
        RecordingGroup("vsphere-vms.rules", vms),
        RecordingGroup("vsphere-datastores.rules", datastores),
    ]
