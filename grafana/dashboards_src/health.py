"""The Health dashboard (vha-health): what vCenter flags (triggered alarms, hardware
sensors), datastore provisioning, VMware Tools, snapshots, licences, resource pools and
tags (issue 13's families, docs/metrics.md).

docs/dashboards.md describes every panel.
"""

from __future__ import annotations

from .common import VAR_VCENTER, Board, Col, column, table
from .promql import VC, m

DS_KEY = "vcenter, datastore_id, datastore"
POOL_KEY = "vcenter, resource_pool_id, resource_pool"
LICENSE_KEY = "vcenter, license, key_suffix"


def build() -> Board:
    d = Board(
        "vha-health",
        "vSphere HA / Health",
        "What vCenter flags (alarms, hardware sensors), datastore provisioning, VMware Tools, "
        "snapshots, licences, resource pools and tags.",
        [VAR_VCENTER],
    )
    d.row("vCenter alarms and hardware")
    d.add(
        12,
        8,
        table(
            "Triggered vCenter alarms",
            "Every alarm vCenter has triggered (red or yellow), on the entity that triggered it.",
            m("vsphere_alarm_triggered", VC),
            order=["vcenter", "entity_type", "entity", "alarm", "status", "acknowledged"],
            hide=["entity_id"],
            sort="status",
            empty="no alarm is triggered",
        ),
        table(
            "Hardware sensors not green",
            "Host hardware health sensors (power, fans, temperatures, ...) that are yellow or "
            "red; red is what Proactive HA acts on.",
            m("vsphere_host_sensor_status", VC, 'status=~"yellow|red"') + " == 1",
            order=["vcenter", "host", "sensor", "type", "status"],
            empty="every sensor is green",
        ),
    )
    d.add(
        24,
        7,
        table(
            "Host hardware",
            "Vendor, model, CPU model and BIOS version of every host.",
            m("vsphere_host_hardware_info", VC),
            order=["vcenter", "host", "vendor", "model", "cpu_model", "bios"],
            sort="host",
        ),
    )
    d.row("Datastores")
    d.add(
        24,
        8,
        table(
            "Datastore provisioning",
            "Capacity, free space, what thin-provisioned VMs may still grow into (uncommitted) "
            "and the space promised to VMs (provisioned = capacity - free + uncommitted); "
            "overcommitted when provisioned exceeds capacity.",
            [
                Col(m("vsphere_datastore_info", VC), None, "type, hosts_mounted"),
                Col(m("vsphere_datastore_capacity_bytes", VC), "Capacity"),
                Col(m("vsphere_datastore_free_bytes", VC), "Free"),
                Col(m("vsphere_datastore_uncommitted_bytes", VC), "Uncommitted"),
                Col(m("vsphere_datastore_provisioned_bytes", VC), "Provisioned"),
                Col(
                    m("vsphere_datastore_maintenance_mode", VC) + " == 1",
                    None,
                    "mode",
                ),
            ],
            key=DS_KEY,
            order=["vcenter", "datastore", "type", "hosts_mounted", "mode", "Capacity"],
            overrides=[
                column(name, ("unit", "bytes"))
                for name in ("Capacity", "Free", "Uncommitted", "Provisioned")
            ],
            sort="datastore",
        ),
    )
    d.row("VMs: VMware Tools, snapshots, tags")
    d.add(
        8,
        8,
        table(
            "VMware Tools version status",
            "VMs by VMware Tools version state (needsUpgrade: a newer Tools is available; "
            "unsupported: too old or too new for the host).",
            f"sum by (status) ({m('vsphere_vm_tools_version_status', VC)})",
            value="VMs",
            sort="VMs",
            desc=True,
        ),
        table(
            "Oldest snapshots",
            "The ten VMs with the oldest snapshots, by age.",
            f"topk(10, time() - {m('vsphere_vm_snapshot_oldest_timestamp_seconds', VC)})",
            value="Age",
            order=["vcenter", "vm", "Age"],
            overrides=[column("Age", ("unit", "s"))],
            sort="Age",
            desc=True,
            empty="no VM has a snapshot",
        ),
        table(
            "Tags in use",
            "vSphere tags and how many VMs, hosts, clusters and datastores carry each.",
            "count by (category, tag) ("
            + " or ".join(
                m(f"vsphere_{kind}_tag_info", VC) for kind in ("vm", "host", "cluster", "datastore")
            )
            + ")",
            value="Objects",
            sort="category",
        ),
    )
    d.row("Licences and resource pools")
    d.add(
        24,
        7,
        table(
            "Licences",
            "Every licence vCenter knows (the user needs Global.Licenses), its use and "
            "expiry; keys are shown by their last five characters only.",
            [
                Col(m("vsphere_license_info", VC), None, "edition, cost_unit"),
                Col(m("vsphere_license_used", VC), "Used"),
                Col(m("vsphere_license_total", VC), "Total"),
                Col(
                    f"{m('vsphere_license_expiration_timestamp_seconds', VC)} - time()",
                    "Expires in",
                ),
            ],
            key=LICENSE_KEY,
            order=["vcenter", "license", "key_suffix", "edition", "cost_unit", "Used", "Total"],
            overrides=[column("Expires in", ("unit", "s"))],
            sort="license",
        ),
    )
    d.add(
        24,
        8,
        table(
            "Resource pools and vApps",
            "Usage, reservations and limits of every resource pool and vApp (an empty limit is "
            "unlimited), with its cluster and parent.",
            [
                Col(m("vsphere_resource_pool_info", VC), None, "type, cluster, parent"),
                Col(m("vsphere_resource_pool_cpu_usage_hertz", VC), "CPU used"),
                Col(m("vsphere_resource_pool_cpu_reservation_hertz", VC), "CPU reserved"),
                Col(m("vsphere_resource_pool_cpu_limit_hertz", VC), "CPU limit"),
                Col(m("vsphere_resource_pool_memory_usage_bytes", VC), "Memory active"),
                Col(m("vsphere_resource_pool_memory_reservation_bytes", VC), "Memory reserved"),
                Col(m("vsphere_resource_pool_memory_limit_bytes", VC), "Memory limit"),
            ],
            key=POOL_KEY,
            order=["vcenter", "cluster", "resource_pool", "type", "parent"],
            hide=["resource_pool_id"],
            overrides=[
                *[column(n, ("unit", "hertz")) for n in ("CPU used", "CPU reserved", "CPU limit")],
                *[
                    column(n, ("unit", "bytes"))
                    for n in ("Memory active", "Memory reserved", "Memory limit")
                ],
            ],
            sort="resource_pool",
        ),
    )
    return d
