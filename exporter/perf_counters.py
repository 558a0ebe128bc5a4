"""The vSphere performance counters the exporter collects, and how each becomes a metric.

One table, one row per *logical* counter (the names ``performance.counters`` accepts). A row
says which vSphere counters (``group.name.rollup``, with the unit vCenter must report for it)
feed it per object kind, and how their raw values turn into a metric in base units:

* ``cpu.usage.average`` is in hundredths of a percent        -> ratio 0..1
* ``*.summation`` CPU times are milliseconds per sample        -> share of the sample's time
* memory counters are in KiB (``kiloBytes``)                    -> bytes
* ``kiloBytesPerSecond`` rates                                  -> bytes per second
* latencies are milliseconds                                    -> seconds
* packet ``summation`` counters are counts per sample           -> per second

Disk counters come from the ``datastore`` group because it has the same counters, instances
and level (1) for hosts and VMs: a host's or VM's read latency is the mean over its
datastores weighted by each one's reads (what an average read waited), reads and writes per
second are summed over datastores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

KIB = 1024.0

# Raw values of one entity and one sample: vSphere counter name -> {instance: value}.
# Instance "" is the aggregate; vCenter reports -1 for "no value", which never gets here.
Raw = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class Source:
    """A vSphere counter as ``group.name.rollup``, its unit, and which instances to ask for."""

    name: str
    unit: str
    instance: str = ""  # "" = the aggregate, "*" = every instance


@dataclass(frozen=True)
class Entity:
    """What a conversion needs to know about the object the sample belongs to."""

    kind: str  # "host" or "vm"
    vcpus: int  # a VM's vCPUs; for a host, the vCPUs of its powered-on VMs
    interval: float  # sample length, seconds (20 for real-time statistics)


Compute = Callable[[Raw, Entity], float | None]


@dataclass(frozen=True)
class Counter:
    key: str  # logical name, as in performance.counters
    metric: str  # the metric name after vsphere_<kind>_
    help: str
    sources: Mapping[str, tuple[Source, ...]]  # kind -> sources (first one required)
    compute: Compute

    def metric_name(self, kind: str) -> str:
        return f"vsphere_{kind}_{self.metric}"


# --- combining instances and converting ---------------------------------------------------


def total(values: Mapping[str, float] | None) -> float | None:
    """The aggregate instance when vCenter sent one, else the sum of the instances."""
    if not values:
        return None
    if "" in values:
        return values[""]
    return sum(values.values())


def _scaled(name: str, factor: float) -> Compute:
    def compute(raw: Raw, entity: Entity) -> float | None:
        value = total(raw.get(name))
        return None if value is None else value * factor

    return compute


def _time_share(name: str) -> Compute:
    """Milliseconds per sample summed over vCPUs -> share of one vCPU's time, 0..1."""

    def compute(raw: Raw, entity: Entity) -> float | None:
        value = total(raw.get(name))
        if value is None:
            return None
        if entity.vcpus <= 0:
            return 0.0 if value == 0 else None
        share = value / (entity.interval * 1000.0 * entity.vcpus)
        return min(1.0, max(0.0, share))

    return compute


def _per_second(*names: str) -> Compute:
    """Counts per sample (``summation``) of one or more counters -> per second."""

    def compute(raw: Raw, entity: Entity) -> float | None:
        values = [v for v in (total(raw.get(n)) for n in names) if v is not None]
        if not values:
            return None
        return sum(values) / entity.interval

    return compute


def _weighted_latency(latency: str, ops: str) -> Compute:
    """Per-instance latency (ms), weighted by each instance's operations; seconds.

    Without operations (idle, or the operations counter is missing) the worst instance.
    """

    def compute(raw: Raw, entity: Entity) -> float | None:
        lat = dict(raw.get(latency) or {})
        if not lat:
            return None
        if "" in lat and len(lat) > 1:
            del lat[""]
        weights = raw.get(ops) or {}
        weighted = sum(v * weights.get(k, 0.0) for k, v in lat.items())
        n = sum(weights.get(k, 0.0) for k in lat)
        ms = weighted / n if n > 0 else max(lat.values())
        return ms / 1000.0

    return compute


def _by_kind(**computes: Compute) -> Compute:
    """A different conversion per object kind."""

    def compute(raw: Raw, entity: Entity) -> float | None:
        return computes[entity.kind](raw, entity)

    return compute


def _both(source: Source) -> dict[str, tuple[Source, ...]]:
    return {"host": (source,), "vm": (source,)}


_DS_READ_LAT = Source("datastore.totalReadLatency.average", "millisecond", "*")
_DS_WRITE_LAT = Source("datastore.totalWriteLatency.average", "millisecond", "*")
_DS_READS = Source("datastore.numberReadAveraged.average", "number", "*")
_DS_WRITES = Source("datastore.numberWriteAveraged.average", "number", "*")
_DROPPED_RX = Source("net.droppedRx.summation", "number")
_DROPPED_TX = Source("net.droppedTx.summation", "number")

COUNTERS: tuple[Counter, ...] = (
    Counter(
        "cpu_usage",
        "cpu_usage_ratio",
        "CPU in use as a share of the CPU capacity (a VM: of its vCPUs; can exceed 1 with "
        "Turbo Boost), 0..1 (cpu.usage.average).",
        _both(Source("cpu.usage.average", "percent")),
        _scaled("cpu.usage.average", 1 / 10000),
    ),
    Counter(
        "cpu_ready",
        "cpu_ready_ratio",
        "Share of time a vCPU was ready to run but not scheduled, per vCPU, 0..1 (a host: "
        "averaged over its powered-on VMs' vCPUs) (cpu.ready.summation).",
        _both(Source("cpu.ready.summation", "millisecond")),
        _time_share("cpu.ready.summation"),
    ),
    Counter(
        "cpu_costop",
        "cpu_costop_ratio",
        "Share of time a vCPU was stopped to co-schedule the VM's other vCPUs, per vCPU, "
        "0..1 (cpu.costop.summation).",
        {"vm": (Source("cpu.costop.summation", "millisecond"),)},
        _time_share("cpu.costop.summation"),
    ),
    Counter(
        "memory_active",
        "memory_active_bytes",
        "Memory actively used, as estimated by the hypervisor (mem.active.average).",
        _both(Source("mem.active.average", "kiloBytes")),
        _scaled("mem.active.average", KIB),
    ),
    Counter(
        "memory_consumed",
        "memory_consumed_bytes",
        "Host memory consumed by VMs and the hypervisor (mem.consumed.average). A VM's "
        "consumed memory is vsphere_vm_memory_consumed_bytes (quickStats).",
        {"host": (Source("mem.consumed.average", "kiloBytes"),)},
        _scaled("mem.consumed.average", KIB),
    ),
    Counter(
        "memory_balloon",
        "memory_balloon_bytes",
        "Memory reclaimed by the balloon driver (mem.vmmemctl.average).",
        _both(Source("mem.vmmemctl.average", "kiloBytes")),
        _scaled("mem.vmmemctl.average", KIB),
    ),
    Counter(
        "memory_swapped",
        "memory_swapped_bytes",
        "Memory swapped out to disk (a VM: mem.swapped.average; a host: mem.swapused.average).",
        {
            "host": (Source("mem.swapused.average", "kiloBytes"),),
            "vm": (Source("mem.swapped.average", "kiloBytes"),),
        },
        _by_kind(host=_scaled("mem.swapused.average", KIB), vm=_scaled("mem.swapped.average", KIB)),
    ),
    Counter(
        "memory_swap_in",
        "memory_swap_in_bytes_per_second",
        "Rate memory is swapped back in from disk, the sign of active swapping "
        "(mem.swapinRate.average).",
        _both(Source("mem.swapinRate.average", "kiloBytesPerSecond")),
        _scaled("mem.swapinRate.average", KIB),
    ),
    Counter(
        "memory_compressed",
        "memory_compressed_bytes",
        "Memory held compressed (mem.compressed.average).",
        _both(Source("mem.compressed.average", "kiloBytes")),
        _scaled("mem.compressed.average", KIB),
    ),
    Counter(
        "disk_read_latency",
        "disk_read_latency_seconds",
        "Mean time a read took, over the datastores weighted by their reads "
        "(datastore.totalReadLatency.average).",
        {"host": (_DS_READ_LAT, _DS_READS), "vm": (_DS_READ_LAT, _DS_READS)},
        _weighted_latency(_DS_READ_LAT.name, _DS_READS.name),
    ),
    Counter(
        "disk_write_latency",
        "disk_write_latency_seconds",
        "Mean time a write took, over the datastores weighted by their writes "
        "(datastore.totalWriteLatency.average).",
        {"host": (_DS_WRITE_LAT, _DS_WRITES), "vm": (_DS_WRITE_LAT, _DS_WRITES)},
        _weighted_latency(_DS_WRITE_LAT.name, _DS_WRITES.name),
    ),
    Counter(
        "disk_reads",
        "disk_reads_per_second",
        "Read operations per second, summed over datastores "
        "(datastore.numberReadAveraged.average).",
        _both(_DS_READS),
        _scaled(_DS_READS.name, 1.0),
    ),
    Counter(
        "disk_writes",
        "disk_writes_per_second",
        "Write operations per second, summed over datastores "
        "(datastore.numberWriteAveraged.average).",
        _both(_DS_WRITES),
        _scaled(_DS_WRITES.name, 1.0),
    ),
    Counter(
        "network_received",
        "network_received_bytes_per_second",
        "Network data received (net.received.average).",
        _both(Source("net.received.average", "kiloBytesPerSecond")),
        _scaled("net.received.average", KIB),
    ),
    Counter(
        "network_transmitted",
        "network_transmitted_bytes_per_second",
        "Network data transmitted (net.transmitted.average).",
        _both(Source("net.transmitted.average", "kiloBytesPerSecond")),
        _scaled("net.transmitted.average", KIB),
    ),
    Counter(
        "network_dropped",
        "network_dropped_packets_per_second",
        "Packets dropped, received and transmitted together "
        "(net.droppedRx.summation + net.droppedTx.summation).",
        {"host": (_DROPPED_RX, _DROPPED_TX), "vm": (_DROPPED_RX, _DROPPED_TX)},
        _per_second(_DROPPED_RX.name, _DROPPED_TX.name),
    ),
)

BY_KEY: dict[str, Counter] = {c.key: c for c in COUNTERS}
KINDS = ("host", "vm")


def counters_for(kind: str, keys: tuple[str, ...]) -> list[Counter]:
    """The enabled counters that exist for ``kind``, in table order."""
    wanted = set(keys)
    return [c for c in COUNTERS if c.key in wanted and kind in c.sources]


def sources_for(counters: list[Counter], kind: str) -> list[Source]:
    """Every vSphere counter the given counters need for ``kind``, once each."""
    seen: dict[str, Source] = {}
    for counter in counters:
        for source in counter.sources[kind]:
            seen.setdefault(source.name, source)
    return list(seen.values())
