"""Licences: ``vsphere_license_info{license,edition,cost_unit,key_suffix}`` and usage, total
and expiry per licence (``exporter/licenses.py`` polls them)."""

from __future__ import annotations

from ..families import Family, labels
from .context import CollectorUnavailable, RenderContext


def collect(ctx: RenderContext) -> list[Family]:
    snapshot = ctx.inventory.licenses
    if snapshot is None:
        return []
    info = Family("vsphere_license_info", "A licence known to the vCenter; always 1.")
    used = Family("vsphere_license_used", "Licence units in use (cost_unit).")
    total = Family("vsphere_license_total", "Licence units available (0: unlimited/eval).")
    expires = Family(
        "vsphere_license_expiration_timestamp_seconds", "When a time-limited licence expires."
    )
    for lic in snapshot.licenses:
        base = labels(
            (("vcenter", ctx.vcenter), ("license", lic.name), ("key_suffix", lic.key_suffix))
        )
        info.add(f"{base},{labels((('edition', lic.edition), ('cost_unit', lic.cost_unit)))}", 1)
        total.add(base, lic.total)
        if lic.used is not None:
            used.add(base, lic.used)
        if lic.expires is not None:
            expires.add(base, lic.expires)
    out = [info, used, total, expires]
    if not snapshot.ok:
        raise CollectorUnavailable(snapshot.error, out)
    return out
