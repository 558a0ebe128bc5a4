"""VMware Tools version state: ``vsphere_vm_tools_version_status{status}``, one enum per VM.

``guest.toolsVersionStatus2`` has nine values; an admin acts on five, so they are folded:
current (``guestToolsCurrent``, ``guestToolsSupportedNew``), needsUpgrade
(``guestToolsNeedUpgrade``, ``guestToolsSupportedOld``), unsupported (``guestToolsTooOld``,
``guestToolsTooNew``, ``guestToolsBlacklisted``), notInstalled, and unmanaged (open-vm-tools
updated by the guest OS, ``guestToolsUnmanaged``).  The version is on ``vsphere_vm_info``.
"""

from __future__ import annotations

from ..families import Family
from ..inventory import ManagedObject
from .cache import by_followed, followed_revisions, packed_blocks, previous_families, remember
from .context import RenderContext
from .vms import every_vm, is_vm

STATUSES = ("current", "needsUpgrade", "unsupported", "notInstalled", "unmanaged")
FOLD = {
    "guestToolsCurrent": "current",
    "guestToolsSupportedNew": "current",
    "guestToolsNeedUpgrade": "needsUpgrade",
    "guestToolsSupportedOld": "needsUpgrade",
    "guestToolsTooOld": "unsupported",
    "guestToolsTooNew": "unsupported",
    "guestToolsBlacklisted": "unsupported",
    "guestToolsNotInstalled": "notInstalled",
    "guestToolsUnmanaged": "unmanaged",
}


def collect(ctx: RenderContext) -> list[Family]:
    fam = Family("vsphere_vm_tools_version_status", "VMware Tools version state of the VM.")

    def render(vm: ManagedObject) -> tuple[str, ...]:
        scratch = Family(fam.name, "")
        current = FOLD.get(str(vm.get("guest.toolsVersionStatus2") or ""))
        scratch.add_enum(ctx.base("vm", vm), "status", STATUSES, current)
        return ("".join(scratch.lines),)

    if ctx.changed_types is not None:  # a patch: only the changed VMs' blocks (cache.py)
        (fam.members,), _ = packed_blocks(
            ctx, "tools_blocks", every_vm(ctx), render, 1, ctx.vcenter, by_followed, is_vm
        )
        return [fam]
    vms = every_vm(ctx)()
    # Keyed on what the follower changed: a quickStats poll changes every VM, not this.
    signature = (ctx.vcenter, followed_revisions(vms))
    if (previous := previous_families(ctx, "tools_families", signature)) is not None:
        return previous
    # Cached as gzip members per block of VMs, as the VM families are (~0.6 KB per VM).
    (fam.members,), _ = packed_blocks(
        ctx, "tools_blocks", vms, render, 1, extra_key=ctx.vcenter, key=by_followed
    )
    return remember(ctx, "tools_families", signature, [fam])
