"""Custom attributes as info metrics, opt-in (``collectors.custom_attributes``):
``vsphere_vm_custom_attribute_info{...,attribute,value}`` and the host equivalent, one
series per object and set attribute, optionally only for an allow-list of attributes."""

from __future__ import annotations

from exporter.collectors_config import parse_collectors_config

from ..families import Family, labels
from ..inventory import ManagedObject
from .cache import by_followed, followed_revisions, packed_blocks, previous_families, remember
from .context import RenderContext


def collect(ctx: RenderContext) -> list[Family]:
    cfg = parse_collectors_config(ctx.config).custom_attributes
    if not cfg.enabled:
        return []
    allowed = set(cfg.attributes)
    out = []
    fields_key = tuple(sorted(ctx.topology.custom_fields.items()))
    for type_name, kind in (("VirtualMachine", "vm"), ("HostSystem", "host")):
        if not ctx.renders(type_name):
            continue  # a host's patch: the 40,000 VMs' family stays as the body has it
        fam = Family(
            f"vsphere_{kind}_custom_attribute_info",
            f"A custom attribute set on the {kind}; always 1.",
        )

        def render(obj: ManagedObject, kind: str = kind, name: str = fam.name) -> tuple[str, ...]:
            scratch = Family(name, "")
            base = ctx.base(kind, obj)
            for attr, value in sorted(ctx.topology.attributes(obj).items()):
                if value and (not allowed or attr in allowed):
                    scratch.add(f"{base},{labels((('attribute', attr), ('value', value)))}", 1)
            return ("".join(scratch.lines),)

        def listed(type_name: str = type_name) -> list[ManagedObject]:
            return [o for o in ctx.objects(type_name) if not o.get("config.template")]

        def select(obj: ManagedObject, type_name: str = type_name) -> bool:
            return obj.type == type_name and not obj.props.get("config.template")

        extra = (ctx.vcenter, fields_key, cfg)
        name = f"attributes_{kind}_blocks"
        if ctx.changed_types is not None:  # a patch: only the changed objects' blocks
            (fam.members,), _ = packed_blocks(
                ctx, name, listed, render, 1, extra, by_followed, select
            )
            out.append(fam)
            continue
        objs = listed()
        # a quickStats poll changes every object, not its custom values
        signature = (ctx.vcenter, cfg, fields_key, followed_revisions(objs))
        if previous := previous_families(ctx, f"attributes_{kind}_families", signature):
            out += previous
            continue
        # As gzip members per block of objects (collectors/cache.py), as the VM families.
        (fam.members,), _ = packed_blocks(ctx, name, objs, render, 1, extra, key=by_followed)
        out += remember(ctx, f"attributes_{kind}_families", signature, [fam])
    return out
