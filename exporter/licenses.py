"""Licences from ``LicenseManager.licenses``, polled (they change rarely and are not inventory).

``LicenseManagerLicenseInfo``: ``licenseKey``, ``editionKey``, ``name``, ``total``,
``used`` (optional), ``costUnit`` (cpuPackage, cpuCore, server, vm, ...), ``properties``
(``expirationDate`` for time-limited licences).  The reference marks the property's
privilege as "dynamic": vCenter shows licence details to users with Global.Licenses; a
read-only user may get an empty list.  Licence keys are secrets: only their last five
characters (as vCenter's UI shows them) leave this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyVmomi import vim

from .alarms import retrieve


@dataclass(frozen=True)
class License:
    key_suffix: str
    name: str
    edition: str
    cost_unit: str
    total: float
    used: float | None
    expires: float | None  # Unix seconds; None for a perpetual licence


@dataclass(frozen=True)
class LicenseSnapshot:
    ok: bool
    licenses: tuple[License, ...] = ()
    error: str = ""


def _expiry(properties: Any) -> float | None:
    for prop in properties or []:
        if getattr(prop, "key", None) == "expirationDate":
            value = getattr(prop, "value", None)
            if isinstance(value, datetime):
                return value.timestamp()
    return None


def read_licenses(content: Any) -> tuple[License, ...]:
    manager = getattr(content, "licenseManager", None)
    if manager is None:
        return ()
    out: list[License] = []
    for obj in retrieve(content, [manager], vim.LicenseManager, ["licenses"]):
        for prop in obj.propSet or []:
            for info in prop.val or []:
                key = str(getattr(info, "licenseKey", "") or "")
                used = getattr(info, "used", None)
                out.append(
                    License(
                        key_suffix=key[-5:],
                        name=str(getattr(info, "name", "") or ""),
                        edition=str(getattr(info, "editionKey", "") or ""),
                        cost_unit=str(getattr(info, "costUnit", "") or ""),
                        total=float(getattr(info, "total", 0) or 0),
                        used=None if used is None else float(used),
                        expires=_expiry(getattr(info, "properties", None)),
                    )
                )
    return tuple(sorted(out, key=lambda lic: (lic.name, lic.key_suffix)))
