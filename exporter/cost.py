"""Prices: the ``cost:`` section, and the price series the cost recording rules multiply by.

Prices are per month in one currency: per vCPU, per GiB of memory and per GiB of storage,
with optional overrides per cluster (by cluster name, in every vCenter). The exporter serves
the effective price of every cluster (and of each vCenter's standalone hosts, as
``cluster_id=""``), so Prometheus can turn allocations into money with a plain join on
``(vcenter, cluster_id)``; ``vha report`` reads the same section directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vcenter.config import Config, ConfigError, _mapping, _number, _str, _unknown_keys

from .families import Family, escape
from .inventory import Inventory

GIB = 1024.0**3
RESOURCES = ("vcpu", "memory", "storage")


@dataclass(frozen=True)
class Prices:
    """Monthly prices: per vCPU, per GiB of memory, per GiB of storage."""

    per_vcpu_month: float = 0.0
    per_gb_memory_month: float = 0.0
    per_gb_storage_month: float = 0.0

    def monthly(self, vcpus: float, memory_bytes: float, storage_bytes: float) -> float:
        return (
            vcpus * self.per_vcpu_month
            + memory_bytes / GIB * self.per_gb_memory_month
            + storage_bytes / GIB * self.per_gb_storage_month
        )


@dataclass(frozen=True)
class CostConfig:
    """The ``cost:`` section; ``configured`` is false when the section is absent."""

    configured: bool = False
    currency: str = "EUR"
    default: Prices = Prices()
    clusters: Mapping[str, Prices] = field(default_factory=dict)
    # Licence prices per unit (the licence's cost unit) and month, by licence name or
    # edition key; read by ``vha report`` only (vha/report/licenses.py).
    licenses: Mapping[str, float] = field(default_factory=dict)

    def prices(self, cluster: str) -> Prices:
        """The prices of a cluster (by name); standalone hosts (``""``) use the default."""
        return self.clusters.get(cluster, self.default) if cluster else self.default


_PRICE_KEYS = ("per_vcpu_month", "per_gb_memory_month", "per_gb_storage_month")


def _prices(section: Mapping[str, Any], key: str, base: Prices) -> Prices:
    return Prices(
        **{
            name: _number(section.get(name), f"{key}.{name}", getattr(base, name))
            for name in _PRICE_KEYS
        }
    )


def parse_cost_config(source: Config | Mapping[str, Any] | None) -> CostConfig:
    """Validate ``cost:`` (a :class:`Config` or the section); errors name the key."""
    key = "cost"
    raw = source.raw.get(key) if isinstance(source, Config) else source
    if raw is None:
        return CostConfig()
    section = _mapping(raw, key)
    _unknown_keys(section, {"currency", *_PRICE_KEYS, "clusters", "licenses"}, key)
    currency = _str(section.get("currency", "EUR"), f"{key}.currency")
    assert currency is not None
    default = _prices(section, key, Prices())
    clusters: dict[str, Prices] = {}
    for name, entry in _mapping(section.get("clusters"), f"{key}.clusters").items():
        ckey = f"{key}.clusters.{name}"
        entry = _mapping(entry, ckey)
        _unknown_keys(entry, set(_PRICE_KEYS), ckey)
        clusters[str(name)] = _prices(entry, ckey, default)
    licenses: dict[str, float] = {}
    for name, price in _mapping(section.get("licenses"), f"{key}.licenses").items():
        lkey = f"{key}.licenses.{name}"
        if price is None:
            raise ConfigError(lkey, "must be a number (price per licence unit and month)")
        licenses[str(name)] = _number(price, lkey, 0.0)
    return CostConfig(
        configured=True, currency=currency, default=default, clusters=clusters, licenses=licenses
    )


class CostSource:
    """Renders the effective prices of every cluster of every synced vCenter."""

    def __init__(self, cost: CostConfig, inventories: Sequence[Inventory]) -> None:
        self.cost = cost
        self.inventories = list(inventories)

    def families(self) -> list[Family]:
        if not self.cost.configured:
            return []
        info = Family("vsphere_cost_info", "The currency prices are in; always 1.")
        info.add(f'currency="{escape(self.cost.currency)}"', 1)
        vcpu = Family(
            "vsphere_cluster_price_per_vcpu_month", "Price of one vCPU per month (config)."
        )
        memory = Family(
            "vsphere_cluster_price_per_memory_gib_month",
            "Price of one GiB of VM memory per month (config).",
        )
        storage = Family(
            "vsphere_cluster_price_per_storage_gib_month",
            "Price of one GiB of VM storage per month (config).",
        )
        for inv in self.inventories:
            with inv.lock:
                if not (inv.up and inv.synced):
                    continue
                clusters = [
                    (o.moid, o.name)
                    for o in inv.objects.values()
                    if o.type == "ClusterComputeResource"
                ]
            vc = escape(inv.vcenter)
            for cluster_id, name in [("", ""), *sorted(clusters)]:
                prices = self.cost.prices(name)
                block = f'vcenter="{vc}",cluster_id="{escape(cluster_id)}",cluster="{escape(name)}"'
                vcpu.add(block, prices.per_vcpu_month)
                memory.add(block, prices.per_gb_memory_month)
                storage.add(block, prices.per_gb_storage_month)
        return [info, vcpu, memory, storage]
