"""Virtual machines: identity, protection, power, VMware Tools and application heartbeats."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from ..families import Family, fmt, labels
from ..inventory import ManagedObject
from .cache import by_followed, packed_blocks, revisions
from .context import RenderContext

POWER_STATES = ("poweredOn", "poweredOff", "suspended")
CONNECTION_STATES = ("connected", "disconnected", "orphaned", "inaccessible", "invalid")
HEARTBEAT_STATUSES = ("green", "yellow", "red", "gray")
APP_STATUSES = ("green", "red", "gray")
# GuestInfoAppStateType (vSphere API 5.5): unset means "none", the API's default.
APP_STATES = ("none", "appStateOk", "appStateNeedReset")
PRIORITY_VALUE = {"disabled": 0, "lowest": 1, "low": 2, "medium": 3, "high": 4, "highest": 5}
MHZ = 1e6
MIB = 1024.0 * 1024.0


def app_status(raw: str | None) -> str | None:
    """``appStatusGreen`` -> ``green``; the prefix carries no information in a label."""
    if raw and raw.startswith("appStatus"):
        return raw[len("appStatus") :].lower()
    return raw


def _families() -> list[Family]:
    """The per-VM families whose samples depend only on the VM and its placement."""
    return [
        Family("vsphere_vm_info", "VM identity, placement and HA settings; always 1."),
        Family("vsphere_vm_ha_protected", "1 when the stack protects the VM."),
        Family("vsphere_vm_restart_priority", "Restart priority (0 disabled .. 5 highest)."),
        Family("vsphere_vm_power_state", "VM power state."),
        Family("vsphere_vm_connection_state", "VM connection state as vCenter sees it."),
        Family("vsphere_vm_guest_heartbeat_status", "VMware Tools guest heartbeat status."),
        Family("vsphere_vm_tools_running", "1 when VMware Tools is running in the guest."),
        Family("vsphere_vm_app_heartbeat_status", "Application heartbeat status."),
        Family(
            "vsphere_vm_guest_app_state",
            "Application state the guest's application agent set (appStateNeedReset: reset).",
        ),
        Family("vsphere_vm_boot_time_seconds", "Last power-on time, Unix seconds."),
        Family("vsphere_vm_cpu_count", "Virtual CPUs."),
        Family("vsphere_vm_memory_size_bytes", "Configured memory."),
        Family("vsphere_vm_cpu_usage_hertz", "CPU in use."),
        Family("vsphere_vm_memory_usage_bytes", "Guest active memory."),
        Family("vsphere_vm_memory_consumed_bytes", "Host memory consumed by the VM."),
        Family("vsphere_vm_cpu_reservation_hertz", "CPU reservation."),
        Family("vsphere_vm_memory_reservation_bytes", "Memory reservation."),
        Family("vsphere_vm_storage_committed_bytes", "Storage the VM's files take."),
        Family("vsphere_vm_snapshots", "Number of snapshots."),
        Family(
            "vsphere_vm_snapshot_oldest_timestamp_seconds",
            "Creation time of the oldest snapshot, Unix seconds.",
        ),
    ]


# The families of what a quickStats poll refreshes (poller.POLLED): their places in
# _families() and each one's path and scale. Every poll changes every VM's quickStats, so
# they are rendered in blocks of their own, keyed on the VM's revision; the other families
# are keyed on its followed revision, which a poll leaves alone (at 40,000 VMs re-rendering
# all 20 families of every VM after each poll was most of the exporter's CPU).
POLLED = {
    12: ("summary.quickStats.overallCpuUsage", MHZ),
    13: ("summary.quickStats.guestMemoryUsage", MIB),
    14: ("summary.quickStats.hostMemoryUsage", MIB),
}
FOLLOWED = tuple(i for i in range(len(_families())) if i not in POLLED)
_POLLED_LINES = tuple((_families()[i].name, path, scale) for i, (path, scale) in POLLED.items())


def _render_polled(ctx: RenderContext, vm: ManagedObject) -> list[str]:
    """One VM's lines of the :data:`POLLED` families, in that order (as Family.add)."""
    base = ctx.base("vm", vm)
    out = []
    for name, path, scale in _POLLED_LINES:
        value = vm.get(path)
        out.append("" if value is None else f"{name}{{{base}}} {fmt(float(value) * scale)}\n")
    return out


def _render_vm(ctx: RenderContext, vm: ManagedObject, placement: tuple[str, ...]) -> list[str]:
    """One VM's lines for each :data:`FOLLOWED` family of :func:`_families`, in that order,
    then its identity label block (reused for the timestamp families, which change on every
    heartbeat)."""
    fams = _families()
    (info, protected, priority, power, conn, guest, tools, app, app_state, boot, cpus, mem,
     _cpu_use, _mem_use, _mem_cons, cpu_res, mem_res, storage, snaps, oldest) = fams  # fmt: skip
    base = ctx.base("vm", vm)
    attrs = ctx.topology.attributes(vm)
    cfg = ctx.config
    is_protected = cfg.protection.is_protected(vm.name, attrs)
    prio = cfg.restart_priority.resolve(vm.name, attrs)
    host_id, host_name, cluster_id, cluster, datacenter, fault_domain = placement
    info.add(
        base
        + ","
        + labels(
            (
                ("host_id", host_id),
                ("host", host_name),
                ("cluster_id", cluster_id),
                ("cluster", cluster),
                ("datacenter", datacenter),
                ("fault_domain", fault_domain),
                ("guest_os", str(vm.get("summary.config.guestFullName") or "")),
                ("instance_uuid", str(vm.get("config.instanceUuid") or "")),
                ("ha_protected", "true" if is_protected else "false"),
                ("restart_priority", prio),
                ("tools_version", str(vm.get("guest.toolsVersion") or "")),
            )
        ),
        1,
    )
    protected.add(base, 1 if is_protected else 0)
    priority.add(base, PRIORITY_VALUE.get(prio, 3))
    power.add_enum(base, "state", POWER_STATES, vm.get("runtime.powerState"))
    conn.add_enum(base, "state", CONNECTION_STATES, vm.get("runtime.connectionState"))
    guest.add_enum(base, "status", HEARTBEAT_STATUSES, vm.get("guestHeartbeatStatus"))
    tools.add(base, 1 if vm.get("guest.toolsRunningStatus") == "guestToolsRunning" else 0)
    app.add_enum(base, "status", APP_STATUSES, app_status(vm.get("guest.appHeartbeatStatus")))
    app_state.add_enum(base, "state", APP_STATES, vm.get("guest.appState") or "none")
    if vm.get("runtime.bootTime") is not None and vm.get("runtime.powerState") == "poweredOn":
        boot.add(base, vm.get("runtime.bootTime"))
    for fam, path, scale in (
        (cpus, "summary.config.numCpu", 1.0),
        (mem, "summary.config.memorySizeMB", MIB),
        (storage, "summary.storage.committed", 1.0),
    ):
        if vm.get(path) is not None:
            fam.add(base, float(vm.get(path)) * scale)
    cpu_res.add(base, float(vm.get("summary.config.cpuReservation") or 0) * MHZ)
    mem_res.add(base, float(vm.get("summary.config.memoryReservation") or 0) * MIB)
    snap = vm.get("snapshot") or {}
    snaps.add(base, snap.get("count", 0))
    if "oldest" in snap:
        oldest.add(base, snap["oldest"])
    return ["".join(fams[i].lines) for i in FOLLOWED] + [base]


def _placements(ctx: RenderContext) -> dict[str, tuple[str, ...]]:
    """Every host's placement (the labels its VMs carry), computed once per render: the
    same for its 10-40 VMs, and part of the collector's signature."""
    topo = ctx.topology
    objects = ctx.inventory.objects
    out: dict[str, tuple[str, ...]] = {}
    for host_id, (cluster_id, cluster) in topo.host_cluster.items():
        host = objects.get(host_id)
        out[host_id] = (
            host_id,
            host.name if host is not None else "",
            cluster_id,
            cluster,
            topo.datacenter(host_id),
            topo.host_fault_domain.get(host_id, ""),
        )
    return out


def is_vm(obj: ManagedObject) -> bool:
    """What the VM families show: virtual machines, not templates."""
    return obj.type == "VirtualMachine" and not obj.props.get("config.template")


def every_vm(ctx: RenderContext) -> Callable[[], list[ManagedObject]]:
    """The context's VMs, listed when called (a patch's block cache may not need them)."""
    return lambda: [vm for vm in ctx.objects("VirtualMachine") if is_vm(vm)]


def collect(ctx: RenderContext) -> list[Family]:
    """Every VM, reusing a block of VMs' compressed lines until one of them or its
    placement changes.

    Re-rendering 10,000 VMs from scratch takes about half a second; most renders are
    triggered by a handful of changed VMs, a performance collection or the idle heartbeat,
    so the cache keeps a render to the changed VMs' blocks plus the timestamp families;
    and when no VM and no placement changed, the 20 per-VM families are the previous
    render's objects, which the renderer neither joins nor encodes again.

    A patch (the detection lane, patch.py) renders only the blocks of the VMs changed
    since the full render's snapshot, and leaves the quickStats families (a poll's, not
    the follower's) to the full render. Its timestamp families show the changed blocks'
    VMs as of the last round trip (a VM shown red carries the last one that saw it
    green); the other VMs keep the full render's, which alerts read only once a VM is red.
    """
    topo = ctx.topology
    patching = ctx.changed_types is not None
    placements = _placements(ctx)
    fields_key = tuple(sorted(topo.custom_fields.items()))
    if patching:
        families, bases = _render_all(ctx, every_vm(ctx), placements, fields_key)
        families = [f for i, f in enumerate(families) if i not in POLLED]
    else:
        objects = ctx.inventory.objects
        vms = [vm for vm in objects.values() if is_vm(vm)]
        # What the 20 families depend on: the VMs (revisions are unique, so equal tuples
        # are the same VM images), every host's placement, the custom field names, the
        # config.
        signature = (
            ctx.vcenter,
            ctx.config,
            fields_key,
            tuple(placements.items()),
            revisions(vms),
        )
        previous = ctx.inventory.render_cache.get("vm_families")
        if previous is not None and previous[0] == signature:
            families, bases = previous[1], previous[2]
        else:
            families, bases = _render_all(ctx, lambda: vms, placements, fields_key)
            ctx.inventory.render_cache["vm_families"] = (signature, families, bases)
    return [*families, *_seen_families(ctx, bases)]


def _seen_families(ctx: RenderContext, bases: list[tuple[str, ...]]) -> list[Family]:
    """The last-green timestamp families, as gzip members per block of VMs (the VM
    families' blocks): every round trip refreshes them, but a patch renders only its
    changed blocks again, so its shard split is only theirs (exposition.py, shard_groups:
    split whole, the two families of 40,000 lines were 0.25 s of a host failure's patch)."""
    guest_seen = Family(
        "vsphere_vm_guest_heartbeat_last_green_timestamp_seconds",
        "Last time the exporter saw the guest heartbeat green, Unix seconds.",
    )
    app_seen = Family(
        "vsphere_vm_app_heartbeat_last_green_timestamp_seconds",
        "Last time the exporter saw the application heartbeat green, Unix seconds.",
    )
    healthy = ctx.inventory.last_healthy
    # The full render renders every block again (each round trip moves the timestamps):
    # its VMs' label blocks come from the VM families' blocks. A patch renders only the
    # changed blocks' VMs, so it makes theirs (the look-up of 40,000 was 30 ms of it).
    patching = ctx.changed_types is not None
    base_of: dict[str, str] = {} if patching else {k[0]: k[1] for k in bases}
    guest_name, app_name = guest_seen.name, app_seen.name

    def render(vm: ManagedObject) -> tuple[str, str]:
        base = base_of.get(vm.moid) or ctx.base("vm", vm)
        guest, app = healthy.get((vm.moid, "guest")), healthy.get((vm.moid, "app"))
        return (
            "" if guest is None else f"{guest_name}{{{base}}} {fmt(guest)}\n",
            "" if app is None else f"{app_name}{{{base}}} {fmt(app)}\n",
        )

    def key(vm: ManagedObject) -> Hashable:
        return (vm.followed, healthy.get((vm.moid, "guest")), healthy.get((vm.moid, "app")))

    (guest_seen.members, app_seen.members), _ = packed_blocks(
        ctx,
        "vm_seen_blocks",
        every_vm(ctx),
        render,
        2,
        extra_key=ctx.vcenter,
        key=key,
        select=is_vm,
    )
    return [guest_seen, app_seen]


def _render_all(
    ctx: RenderContext,
    vms: Callable[[], list[ManagedObject]],
    placements: dict[str, tuple[str, ...]],
    fields_key: tuple[tuple[int, str], ...],
) -> tuple[list[Family], list[tuple[str, ...]]]:
    """The 20 per-VM families of ``vms()`` and each VM's ``(moid, identity label block)``,
    from the cached gzip members of each block of VMs (collectors/cache.py) whose VMs'
    followed revisions, the placements and the config are unchanged: no VM's text is held
    between renders (~3 KB per VM as text, a few percent of that as members). A host's
    placement (its cluster, name, fault domain) is in the blocks' ``extra_key``: a change
    of one renders every block again, which is rare, and lets a patch render only the
    changed VMs' blocks."""
    families = _families()
    unplaced: dict[str, tuple[str, ...]] = {}

    def placement(vm: ManagedObject) -> tuple[str, ...]:
        host_id = vm.props.get("runtime.host") or ""
        found = placements.get(host_id)
        if found is None:  # a host not (yet) in the inventory
            found = unplaced.setdefault(host_id, (host_id, "", "", "", "", ""))
        return found

    members, kept = packed_blocks(
        ctx,
        "vm_blocks",
        vms,
        lambda vm: _render_vm(ctx, vm, placement(vm)),
        len(FOLLOWED),
        extra_key=(fields_key, ctx.config, tuple(placements.items())),
        # a followed revision is unique to one VM image but its quickStats: what the
        # followed families' lines need, with the placements and config above
        key=by_followed,
        select=is_vm,
    )
    for i, packed in zip(FOLLOWED, members, strict=True):
        families[i].members = packed
    if ctx.changed_types is None:  # a patch leaves the quickStats to the full render
        polled, _ = packed_blocks(
            ctx,
            "vm_polled_blocks",
            vms,
            lambda vm: _render_polled(ctx, vm),
            len(POLLED),
            extra_key=ctx.vcenter,
        )
        for i, packed in zip(POLLED, polled, strict=True):
            families[i].members = packed
    return families, kept
