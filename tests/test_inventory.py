"""Property values become plain data; updates fold in; topology resolves placement."""

from __future__ import annotations

from datetime import UTC, datetime

from pyVmomi import vim

from exporter.inventory import Inventory, ManagedObject, apply_object_updates, convert
from exporter.render import Renderer
from vcenter.config import parse_config

from .metrics_helpers import current_state, parse, select, value


def test_snapshot_tree_counts_and_oldest() -> None:
    old = datetime(2024, 1, 1, tzinfo=UTC)
    new = datetime(2025, 1, 1, tzinfo=UTC)
    child = vim.vm.SnapshotTree(createTime=old, childSnapshotList=[])
    root = vim.vm.SnapshotTree(createTime=new, childSnapshotList=[child])
    info = vim.vm.SnapshotInfo(rootSnapshotList=[root])
    assert convert("snapshot", info) == {"count": 2.0, "oldest": old.timestamp()}


def test_cluster_config_reads_ha_admission_control_and_vm_monitoring() -> None:
    das = vim.cluster.DasConfigInfo(
        enabled=True,
        admissionControlEnabled=True,
        admissionControlPolicy=vim.cluster.FailoverLevelAdmissionControlPolicy(failoverLevel=2),
        vmMonitoring="vmAndAppMonitoring",
        defaultVmSettings=vim.cluster.DasVmSettings(
            vmToolsMonitoringSettings=vim.cluster.VmToolsMonitoringSettings(
                failureInterval=60, minUpTime=240, maxFailures=3, maxFailureWindow=86400
            )
        ),
    )
    drs = vim.cluster.DrsConfigInfo(enabled=True, defaultVmBehavior="fullyAutomated")
    cfg = convert("configurationEx", vim.cluster.ConfigInfoEx(dasConfig=das, drsConfig=drs))
    assert cfg["ha_enabled"] and cfg["admission_control_enabled"]
    assert cfg["policy"] == "failover_level" and cfg["failover_level"] == 2
    assert cfg["failure_interval"] == 60 and cfg["min_uptime"] == 240
    assert cfg["drs_behavior"] == "fullyAutomated"
    off = convert(
        "configurationEx", vim.cluster.ConfigInfoEx(dasConfig=vim.cluster.DasConfigInfo())
    )
    assert off["policy"] == "none" and off["failover_level"] == 0 and not off["ha_enabled"]


def _image() -> Inventory:
    inv = Inventory("vc1")
    objects: dict[str, ManagedObject] = {}
    fields: dict[int, str] = {}
    apply_object_updates(
        objects,
        fields,
        [
            (
                "enter",
                "CustomFieldsManager",
                "CustomFieldsManager",
                [("assign", "field", {1: "HA-FaultDomain"})],
            ),
            (
                "enter",
                "Datacenter",
                "dc-1",
                [("assign", "name", "DC0"), ("assign", "parent", "group-d1")],
            ),
            ("enter", "Folder", "group-h1", [("assign", "parent", "dc-1")]),
            (
                "enter",
                "ClusterComputeResource",
                "c-1",
                [
                    ("assign", "name", "C0"),
                    ("assign", "parent", "group-h1"),
                    ("assign", "configurationEx", {"ha_enabled": True}),
                ],
            ),
            (
                "enter",
                "HostSystem",
                "host-1",
                [
                    ("assign", "name", "esx1"),
                    ("assign", "parent", "c-1"),
                    ("assign", "customValue", {1: "rack-a"}),
                    ("assign", "runtime.connectionState", "connected"),
                    ("assign", "runtime.dasHostState", "master"),
                ],
            ),
            (
                "enter",
                "VirtualMachine",
                "vm-1",
                [
                    ("assign", "name", 'web "one"'),
                    ("assign", "runtime.host", "host-1"),
                    ("assign", "runtime.powerState", "poweredOn"),
                    ("assign", "guestHeartbeatStatus", "green"),
                    ("assign", "guest.appHeartbeatStatus", "appStatusGreen"),
                ],
            ),
            (
                "enter",
                "VirtualMachine",
                "vm-t",
                [("assign", "name", "tmpl"), ("assign", "config.template", True)],
            ),
        ],
    )
    inv.replace(objects, fields)
    inv.mark_alive(now=1000.0)
    return inv


def test_render_places_vm_and_host_and_skips_templates() -> None:
    inv = _image()
    cfg = parse_config({"fault_domains": {"custom_attribute": "HA-FaultDomain"}})
    samples = parse(Renderer(cfg, [inv]).render_now().decode())
    (info,) = select(samples, "vsphere_vm_info")
    assert info.labels["vm"] == 'web "one"' and info.labels["host"] == "esx1"
    assert info.labels["cluster"] == "C0" and info.labels["datacenter"] == "DC0"
    assert info.labels["fault_domain"] == "rack-a"
    assert (
        current_state(samples, "vsphere_vm_app_heartbeat_status", "status", vm_id="vm-1") == "green"
    )
    assert (
        value(samples, "vsphere_vm_guest_heartbeat_last_green_timestamp_seconds", vm_id="vm-1")
        == 1000
    )
    assert value(samples, "vsphere_inventory_objects", vcenter="vc1", type="vm") == 1
    assert value(samples, "vsphere_cluster_ha_masters", cluster="C0") == 1
    assert value(samples, "vsphere_host_vms", host="esx1") == 1


def test_updates_modify_and_leave() -> None:
    inv = _image()
    inv.apply(
        [
            (
                "modify",
                "HostSystem",
                "host-1",
                [("assign", "runtime.connectionState", "notResponding")],
            )
        ]
    )
    inv.apply([("leave", "VirtualMachine", "vm-1", [])])
    inv.mark_alive(now=2000.0)
    samples = parse(Renderer(parse_config({}), [inv]).render_now().decode())
    assert (
        current_state(samples, "vsphere_host_connection_state", "state", host="esx1")
        == "notResponding"
    )
    # Last seen connected stays at the last confirmation while it was connected.
    assert value(samples, "vsphere_host_last_connected_timestamp_seconds", host="esx1") == 1000
    assert select(samples, "vsphere_vm_info") == []


def test_a_down_vcenter_serves_only_its_status_after_the_hold() -> None:
    inv = _image()
    inv.record_error("connect", "ConnectionRefusedError: refused")
    renderer = Renderer(parse_config({"sync": {"hold_seconds": 30}}), [inv])
    samples = parse(renderer.render_now().decode())
    assert value(samples, "vsphere_up", vcenter="vc1") == 0
    assert value(samples, "vsphere_sync_errors_total", vcenter="vc1", reason="connect") == 1
    assert value(samples, "vsphere_inventory_held", vcenter="vc1") == 1
    assert select(samples, "vsphere_host_info") != []  # a short outage: the last image stays
    assert inv.down_since is not None
    inv.down_since -= 31  # the outage outlasts the hold
    samples = parse(renderer.render_now().decode())
    assert value(samples, "vsphere_up", vcenter="vc1") == 0
    assert value(samples, "vsphere_inventory_held", vcenter="vc1") == 0
    assert select(samples, "vsphere_host_info") == []


def test_ready_only_once_the_body_shows_the_sync() -> None:
    inv = Inventory("vc1")
    renderer = Renderer(parse_config({}), [inv])
    renderer.render_now()  # an early body, before vCenter answered
    image = _image()
    inv.replace(image.objects, image.custom_fields)
    assert not renderer.shows_latest_sync()  # synced, but /metrics would still be empty
    body = renderer.render_now()
    assert renderer.shows_latest_sync()
    assert select(parse(body.decode()), "vsphere_vm_info")


def test_a_poll_never_writes_back_over_a_newer_follower_update() -> None:
    """The poll runs beside the follower: an object the follower changed after the poll
    began keeps the follower's (newer) values; the others take the poll's."""
    from exporter.inventory import revision_mark

    inv = Inventory("vc1")
    inv.replace(
        {
            "host-1": ManagedObject("host-1", "HostSystem", {"overallStatus": "green"}),
            "host-2": ManagedObject("host-2", "HostSystem", {"overallStatus": "green"}),
        },
        {},
    )
    mark = revision_mark()  # the poll starts reading
    inv.objects["host-1"] = ManagedObject("host-1", "HostSystem", {"overallStatus": "red"})
    rows = [
        ("HostSystem", "host-1", {"overallStatus": "green"}),  # read before the change
        ("HostSystem", "host-2", {"overallStatus": "yellow"}),
    ]
    assert inv.apply_polled(rows, newer_than=mark) == 1
    assert inv.objects["host-1"].get("overallStatus") == "red"
    assert inv.objects["host-2"].get("overallStatus") == "yellow"
