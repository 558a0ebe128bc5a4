"""Guest filesystems (``guest.disk``, reported by VMware Tools), switchable and off by
default: two series per VM and mount point (``collectors.guest_disks.enabled``)."""

from __future__ import annotations

from exporter.collectors_config import parse_collectors_config

from ..families import Family, labels
from ..inventory import ManagedObject
from ..properties_extra import GUEST_DISKS
from .cache import by_followed, followed_revisions, packed_blocks, previous_families, remember
from .context import RenderContext
from .vms import every_vm, is_vm


def collect(ctx: RenderContext) -> list[Family]:
    if not parse_collectors_config(ctx.config).guest_disks.enabled:
        return []
    cap = Family("vsphere_vm_guest_disk_capacity_bytes", "Guest filesystem capacity.")
    free = Family("vsphere_vm_guest_disk_free_bytes", "Guest filesystem free space.")

    def render(vm: ManagedObject) -> tuple[str, ...]:
        c, f = Family(cap.name, ""), Family(free.name, "")
        base = ctx.base("vm", vm)
        for mount, capacity, free_space in vm.get(GUEST_DISKS) or ():
            block = f"{base},{labels((('mount', mount),))}"
            c.add(block, capacity)
            f.add(block, free_space)
        return "".join(c.lines), "".join(f.lines)

    if ctx.changed_types is not None:  # a patch: only the changed VMs' blocks (cache.py)
        (cap.members, free.members), _ = packed_blocks(
            ctx, "guest_disks_blocks", every_vm(ctx), render, 2, ctx.vcenter, by_followed, is_vm
        )
        return [cap, free]
    vms = every_vm(ctx)()
    signature = (ctx.vcenter, followed_revisions(vms))  # a quickStats poll changes none
    if (previous := previous_families(ctx, "guest_disks_families", signature)) is not None:
        return previous
    # As gzip members per block of VMs (collectors/cache.py), as the VM families are.
    (cap.members, free.members), _ = packed_blocks(
        ctx, "guest_disks_blocks", vms, render, 2, extra_key=ctx.vcenter, key=by_followed
    )
    return remember(ctx, "guest_disks_families", signature, [cap, free])
