"""Licence cost for ``vha report``: the exporter's ``vsphere_license_*`` series times the
``cost.licenses`` prices.

vCenter counts a licence in its own cost unit (``costUnit``: CPU packages, cores, servers,
VMs, ...), so a price is per unit and month, in the ``cost:`` section's currency. A price is
found by the licence's name first (``vsphere_license_info{license}``, what the vSphere Client
shows) and then by its edition key (``edition``, e.g. ``esx.enterprisePlus.cpuPackage``),
so one entry can price every key of an edition. The report shows what the units in use cost,
what the whole capacity costs, and what the unused part of it costs: the "choose the right
licence to save cost" figure. A licence with ``total`` 0 (evaluation, unlimited) has no
capacity cost.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from exporter.cost import CostConfig

INFO = "max by (vcenter, license, key_suffix, edition, cost_unit) (vsphere_license_info)"
USED = "max by (vcenter, license, key_suffix) (vsphere_license_used)"
TOTAL = "max by (vcenter, license, key_suffix) (vsphere_license_total)"


class _Prometheus(Protocol):
    def query(self, expr: str) -> list[tuple[dict[str, str], float]]: ...


@dataclass
class LicenseCost:
    """One licence of one vCenter and, when priced, what it costs per month."""

    vcenter: str
    license: str
    key_suffix: str
    edition: str
    cost_unit: str
    used: float | None
    total: float | None
    price: float | None = None  # per unit and month

    @property
    def used_cost(self) -> float | None:
        if self.price is None:
            return None
        return (self.used or 0.0) * self.price

    @property
    def total_cost(self) -> float | None:
        if self.price is None or not self.total:
            return None
        return self.total * self.price

    @property
    def unused_cost(self) -> float | None:
        if self.price is None or not self.total:
            return None
        return max(self.total - (self.used or 0.0), 0.0) * self.price


def price_for(prices: Mapping[str, float], license: str, edition: str) -> float | None:
    """The configured price of a licence: by name, else by edition key, else none."""
    if license in prices:
        return prices[license]
    return prices.get(edition)


def gather_licenses(prom: _Prometheus, cost: CostConfig | None) -> list[LicenseCost]:
    """Every licence the exporter reports, priced from ``cost.licenses`` (three queries)."""
    prices = cost.licenses if cost is not None else {}

    def key(labels: Mapping[str, str]) -> tuple[str, str, str]:
        return (labels.get("vcenter", ""), labels.get("license", ""), labels.get("key_suffix", ""))

    found: dict[tuple[str, str, str], LicenseCost] = {}
    for labels, _ in prom.query(INFO):
        vcenter, name, suffix = key(labels)
        edition = labels.get("edition", "")
        found[(vcenter, name, suffix)] = LicenseCost(
            vcenter,
            name,
            suffix,
            edition,
            labels.get("cost_unit", ""),
            used=None,
            total=None,
            price=price_for(prices, name, edition),
        )
    for expr, attr in ((USED, "used"), (TOTAL, "total")):
        for labels, value in prom.query(expr):
            lic = found.get(key(labels))
            if lic is not None:
                setattr(lic, attr, value)
    return sorted(found.values(), key=lambda lic: (lic.vcenter, lic.license, lic.key_suffix))


def totals(licenses: list[LicenseCost]) -> tuple[float, float, float] | None:
    """Used, capacity and unused cost over every priced licence; None when none is priced."""
    priced = [lic for lic in licenses if lic.price is not None]
    if not priced:
        return None
    return (
        sum(lic.used_cost or 0.0 for lic in priced),
        sum(lic.total_cost or 0.0 for lic in priced),
        sum(lic.unused_cost or 0.0 for lic in priced),
    )


def summary_line(licenses: list[LicenseCost], money: Callable[[float], str]) -> str | None:
    if not licenses:
        return None
    sums = totals(licenses)
    if sums is None:
        return "Licences: no prices (cost.licenses)."
    _, capacity, unused = sums
    return f"Licences: {money(capacity)} / month for the capacity, {money(unused)} of it unused."


def table(
    licenses: list[LicenseCost], money: Callable[[float | None], str]
) -> tuple[str, list[str], list[list[str]]]:
    """The report section: one row per licence."""

    def units(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f}"

    rows = [
        [
            lic.license,
            lic.edition or "-",
            lic.cost_unit or "-",
            units(lic.used),
            "unlimited" if lic.total == 0 else units(lic.total),
            money(lic.price),
            money(lic.used_cost),
            money(lic.total_cost),
            money(lic.unused_cost),
        ]
        for lic in licenses
    ]
    header = [
        "licence",
        "edition",
        "cost unit",
        "used",
        "total",
        "price / unit / month",
        "used / month",
        "capacity / month",
        "unused / month",
    ]
    return ("Licences", header, rows)


CSV_HEADER = [
    "vcenter",
    "license",
    "key_suffix",
    "edition",
    "cost_unit",
    "used",
    "total",
    "price_per_unit_month",
    "used_per_month",
    "total_per_month",
    "unused_per_month",
    "currency",
]


def csv_text(licenses: list[LicenseCost], currency: str | None) -> str:
    """``licenses.csv``: one row per licence (money columns empty without a price)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER)

    def n(value: float | None) -> str:
        return "" if value is None else f"{round(value, 2):g}"

    for lic in licenses:
        writer.writerow(
            [
                lic.vcenter,
                lic.license,
                lic.key_suffix,
                lic.edition,
                lic.cost_unit,
                n(lic.used),
                n(lic.total),
                n(lic.price),
                n(lic.used_cost),
                n(lic.total_cost),
                n(lic.unused_cost),
                currency or "" if lic.price is not None else "",
            ]
        )
    return buf.getvalue()
