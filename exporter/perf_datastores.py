"""Per-datastore read/write latency and operations, from the hosts' performance samples.

A Datastore has no real-time statistics (``QueryPerfProviderSummary`` reports
``currentSupported`` false for it; its ``datastore`` counters are 5-minute historical
rollups), so the 20 s figures come from where vCenter has them: each host's ``datastore``
counters, which the host queries already ask for with instance "*" (no extra ``QueryPerf``).
A host answers one series per datastore it uses, named by the datastore's UUID: the last
path component of ``DatastoreSummary.url`` (``ds:///vmfs/volumes/<uuid>/``), the same
mapping Telegraf's vSphere input uses. The exporter follows ``summary.url`` (a plain
property of ``summary``, which notifies) to turn an instance into the datastore's moid.

Across the hosts that use a datastore, operations per second are summed (every host's I/O
reaches the same datastore) and latencies are the mean weighted by each host's operations
(what an average I/O waited), or the worst host's when no host did any.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .families import Family, escape, fmt
from .inventory import Inventory
from .perf_counters import Raw

READ_LATENCY = "datastore.totalReadLatency.average"
WRITE_LATENCY = "datastore.totalWriteLatency.average"
READS = "datastore.numberReadAveraged.average"
WRITES = "datastore.numberWriteAveraged.average"
SOURCES = (READ_LATENCY, WRITE_LATENCY, READS, WRITES)

# vSphere counter name -> {instance: raw value}, the per-datastore part of one host's sample.
PerInstance = dict[str, dict[str, float]]


@dataclass(frozen=True)
class DatastoreFamily:
    name: str
    help: str
    key: str  # the performance.counters entry that enables it (and queries its sources)
    value: str  # the vSphere counter
    weight: str | None = None  # latencies: the operations counter that weights them


FAMILIES = (
    DatastoreFamily(
        "vsphere_datastore_read_latency_seconds",
        "Mean time a read of the datastore took, over the hosts using it weighted by their "
        "reads (hosts' datastore.totalReadLatency.average).",
        "disk_read_latency",
        READ_LATENCY,
        READS,
    ),
    DatastoreFamily(
        "vsphere_datastore_write_latency_seconds",
        "Mean time a write to the datastore took, over the hosts using it weighted by their "
        "writes (hosts' datastore.totalWriteLatency.average).",
        "disk_write_latency",
        WRITE_LATENCY,
        WRITES,
    ),
    DatastoreFamily(
        "vsphere_datastore_reads_per_second",
        "Read operations per second on the datastore, summed over the hosts using it "
        "(hosts' datastore.numberReadAveraged.average).",
        "disk_reads",
        READS,
    ),
    DatastoreFamily(
        "vsphere_datastore_writes_per_second",
        "Write operations per second on the datastore, summed over the hosts using it "
        "(hosts' datastore.numberWriteAveraged.average).",
        "disk_writes",
        WRITES,
    ),
)


def instance_of(url: str | None) -> str:
    """The perf instance naming a datastore: the last path component of its url."""
    if not url:
        return ""
    return str(url).rstrip("/").rsplit("/", 1)[-1]


def per_instance(raw: Raw) -> PerInstance:
    """The per-datastore values of one host's sample (kept beside its converted values)."""
    out: PerInstance = {}
    for name in SOURCES:
        values = {k: v for k, v in (raw.get(name) or {}).items() if k not in ("", "*")}
        if values:
            out[name] = values
    return out


def datastore_index(inventory: Inventory) -> dict[str, tuple[str, str]]:
    """Perf instance -> (moid, name) for the inventory's datastores with a url."""
    out: dict[str, tuple[str, str]] = {}
    with inventory.lock:
        for obj in inventory.objects.values():
            if obj.type != "Datastore":
                continue
            instance = instance_of(obj.get("summary.url"))
            if instance:
                out[instance] = (obj.moid, obj.name)
    return out


def _aggregate(spec: DatastoreFamily, hosts: Iterable[PerInstance]) -> dict[str, float]:
    """Instance -> the family's value over every host that reported the instance."""
    total: dict[str, float] = {}
    weights: dict[str, float] = {}
    worst: dict[str, float] = {}
    for host in hosts:
        values = host.get(spec.value) or {}
        ops = (host.get(spec.weight) or {}) if spec.weight else {}
        for instance, v in values.items():
            if spec.weight is None:
                total[instance] = total.get(instance, 0.0) + v
                continue
            w = ops.get(instance, 0.0)
            total[instance] = total.get(instance, 0.0) + v * w
            weights[instance] = weights.get(instance, 0.0) + w
            worst[instance] = max(worst.get(instance, 0.0), v)
    if spec.weight is None:
        return total
    return {i: (total[i] / weights[i] if weights[i] > 0 else worst[i]) / 1000.0 for i in total}


def families(
    vcenter: str,
    hosts: Iterable[PerInstance],
    index: Mapping[str, tuple[str, str]],
    counters: Iterable[str],
) -> list[Family]:
    """The per-datastore families of one vCenter; instances not in ``index`` are dropped."""
    enabled = set(counters)
    hosts = list(hosts)
    vc = escape(vcenter)
    out = []
    for spec in FAMILIES:
        if spec.key not in enabled:
            continue
        lines = []
        for instance, v in sorted(_aggregate(spec, hosts).items()):
            found = index.get(instance)
            if found is None:
                continue
            moid, name = found
            lines.append(
                f'{spec.name}{{vcenter="{vc}",datastore_id="{escape(moid)}",'
                f'datastore="{escape(name)}"}} {fmt(v)}\n'
            )
        out.append(Family(spec.name, spec.help, "gauge", ["".join(lines)] if lines else []))
    return out
