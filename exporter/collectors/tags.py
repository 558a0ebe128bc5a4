"""vSphere tags as info metrics: ``vsphere_<kind>_tag_info{...,category,tag}`` = 1.

The tags come from :mod:`exporter.tagging` (a background refresh over the vAPI REST
endpoint); this collector only joins its snapshot with the inventory's names.  One series
per object and attached tag: per-VM tags are switchable (``collectors.tags.vms``).
"""

from __future__ import annotations

from exporter.collectors_config import parse_collectors_config

from ..families import Family, labels
from .cache import previous_families, remember
from .context import CollectorUnavailable, RenderContext

KINDS = (
    ("VirtualMachine", "vm", "vsphere_vm_tag_info"),
    ("HostSystem", "host", "vsphere_host_tag_info"),
    ("ClusterComputeResource", "cluster", "vsphere_cluster_tag_info"),
    ("Datastore", "datastore", "vsphere_datastore_tag_info"),
)


def collect(ctx: RenderContext) -> list[Family]:
    cfg = parse_collectors_config(ctx.config).tags
    snapshot = ctx.inventory.tags
    if not cfg.enabled or snapshot is None:
        return []
    families = {
        type_name: (kind, Family(name, f"vSphere tag attached to the {kind}; always 1."))
        for type_name, kind, name in KINDS
        if kind != "vm" or cfg.vms
    }
    # The lines depend on the snapshot (refreshed every few minutes) and on which objects
    # exist, their names and config.template, not on their other properties (quickStats
    # change every poll): ``identity`` moves with exactly those, so with it and the snapshot
    # unchanged the previous render's families are handed back without even walking the
    # tagged objects (at 40,000 VMs that walk was ~40 % of a full render's collector time).
    signature = (ctx.vcenter, snapshot, cfg.vms, ctx.inventory.identity)
    out = previous_families(ctx, "tags_families", signature)
    if out is None:
        objects = ctx.inventory.objects
        for moid, pairs in snapshot.attachments.items():
            obj = objects.get(moid)
            if obj is None or obj.type not in families:
                continue  # folders, networks, ... or an object gone since the refresh
            if obj.type == "VirtualMachine" and obj.get("config.template"):
                continue
            kind, fam = families[obj.type]
            base = ctx.base(kind, obj)
            for category, tag in sorted(set(pairs)):
                fam.add(f"{base},{labels((('category', category), ('tag', tag)))}", 1)
        out = remember(ctx, "tags_families", signature, [fam for _kind, fam in families.values()])
    if not snapshot.ok:
        raise CollectorUnavailable(snapshot.error, out)
    return out
