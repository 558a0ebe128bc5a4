"""Real-time performance counters (``PerformanceManager.QueryPerf``) for hosts and VMs.

One :class:`PerfCollector` per vCenter, on its own thread with its own session, so a slow
performance query never delays the inventory follower or ``/metrics``:

* the entities come from the exporter's inventory (connected, powered-on hosts and VMs), so
  there is no second inventory walk;
* counter ids are resolved by name once per vCenter (``PerformanceManager.perfCounter``),
  checking each counter's unit;
* every ``interval_seconds`` the latest real-time sample (``intervalId=20``, ``maxSample=1``)
  is read in batches of ``batch_size`` entities, ``max_concurrent_queries`` at a time, as
  plain SOAP parsed by ElementTree (:mod:`exporter.perf_soap`; pyVmomi's objects cost ten
  times the CPU at 10,000 VMs);
* the converted values (:mod:`exporter.perf_counters`) are rendered into metric families
  once per collection; :meth:`PerfCollector.families` hands out that snapshot without
  waiting on anything, and nothing older than three intervals is ever served.

Failures are counted by reason (``vsphere_perf_errors_total``) and logged; the collector
logs in again on the next round.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim, vmodl

from vcenter.config import (
    Config,
    ConfigError,
    VCenterConfig,
    _bool,
    _mapping,
    _number,
    _unknown_keys,
    _whole,
)
from vcenter.session import classify, connect, describe, disconnect

from .exposition import gzip_member
from .families import Family, escape, fmt
from .inventory import Inventory
from .perf_batches import HALTING, NotSent, run_batches
from .perf_counters import BY_KEY, COUNTERS, KINDS, Counter, Entity, counters_for, sources_for
from .perf_datastores import PerInstance, datastore_index, per_instance
from .perf_datastores import families as datastore_families
from .perf_soap import SoapQueryPerf, metric_ids_xml
from .perf_worker import ParseWorker, worker_pid

log = logging.getLogger(__name__)

ERROR_REASONS = ("connect", "auth", "session", "fault", "timeout", "other")
REALTIME_INTERVAL_ID = 20  # vCenter's real-time statistics: one sample per 20 s
_MOREF_TYPES = {"host": vim.HostSystem, "vm": vim.VirtualMachine}
_NOT_FOUND_RETRIES = 3


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PerfConfig:
    """The ``performance:`` section."""

    enabled: bool = True
    interval_seconds: float = 20.0
    hosts: bool = True
    vms: bool = True
    counters: tuple[str, ...] = tuple(c.key for c in COUNTERS)
    batch_size: int = 250
    max_concurrent_queries: int = 4
    timeout_seconds: float = 30.0
    # Parse and convert answers in a worker process (exporter/perf_worker.py), so the
    # parse never holds the GIL that /metrics scrapes wait on; false: on the query threads.
    worker_process: bool = True

    @property
    def stale_after_seconds(self) -> float:
        """Samples older than this are not served (three missed collections, at least 60 s)."""
        return max(3 * self.interval_seconds, 60.0)


_PERF_KEYS = {
    "enabled",
    "interval_seconds",
    "hosts",
    "vms",
    "counters",
    "batch_size",
    "max_concurrent_queries",
    "timeout_seconds",
    "worker_process",
}


def parse_performance_config(source: Config | Mapping[str, Any] | None) -> PerfConfig:
    """Validate ``performance:`` (a :class:`Config` or the section itself); errors name the key."""
    key = "performance"
    raw = source.raw.get(key) if isinstance(source, Config) else source
    section = _mapping(raw, key)
    _unknown_keys(section, _PERF_KEYS, key)
    counters: tuple[str, ...] = PerfConfig.counters
    if section.get("counters") is not None:
        items = section["counters"]
        if not isinstance(items, list) or not items:
            raise ConfigError(f"{key}.counters", "must be a non-empty list of counter names")
        for i, name in enumerate(items):
            if name not in BY_KEY:
                raise ConfigError(
                    f"{key}.counters[{i}]",
                    f"unknown counter {name!r} (known: {', '.join(BY_KEY)})",
                )
        counters = tuple(dict.fromkeys(items))
    return PerfConfig(
        enabled=_bool(section.get("enabled"), f"{key}.enabled", True),
        interval_seconds=_number(
            section.get("interval_seconds"), f"{key}.interval_seconds", 20.0, minimum=1.0
        ),
        hosts=_bool(section.get("hosts"), f"{key}.hosts", True),
        vms=_bool(section.get("vms"), f"{key}.vms", True),
        counters=counters,
        batch_size=_whole(section.get("batch_size"), f"{key}.batch_size", 250, 1, 10000),
        max_concurrent_queries=_whole(
            section.get("max_concurrent_queries"), f"{key}.max_concurrent_queries", 4, 1, 64
        ),
        timeout_seconds=_number(
            section.get("timeout_seconds"), f"{key}.timeout_seconds", 30.0, minimum=1.0
        ),
        worker_process=_bool(section.get("worker_process"), f"{key}.worker_process", True),
    )


# --- one collection's data -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """An entity to query: kind, moid, name and the vCPUs the CPU-time ratios divide by.

    Slotted, as :class:`Sample`: one of each per host and VM (22,000 at 10,000 VMs), and
    no ``__dict__`` each."""

    kind: str
    moid: str
    name: str
    vcpus: int


@dataclass(slots=True)
class Sample:
    """The converted values of one entity's latest sample, and when they arrived."""

    target: Target
    received: float
    values: dict[str, float] = field(default_factory=dict)  # counter key -> value
    # A host's raw datastore counters per datastore instance (exporter/perf_datastores.py).
    datastores: PerInstance = field(default_factory=dict)


def targets_of(inventory: Inventory, *, hosts: bool, vms: bool) -> list[Target] | None:
    """Connected, powered-on hosts and VMs from a synced inventory (None when not synced)."""
    host_vcpus: dict[str, int] = {}
    vm_targets: list[Target] = []
    host_targets: list[Target] = []
    with inventory.lock:
        if not (inventory.up and inventory.synced):
            return None
        for obj in inventory.objects.values():
            if obj.type == "VirtualMachine":
                if obj.get("config.template") or obj.get("runtime.powerState") != "poweredOn":
                    continue
                if obj.get("runtime.connectionState", "connected") != "connected":
                    continue
                n = int(obj.get("summary.config.numCpu") or 0)
                host = obj.get("runtime.host")
                if host:
                    host_vcpus[host] = host_vcpus.get(host, 0) + n
                if vms:
                    vm_targets.append(Target("vm", obj.moid, obj.name, n))
            elif obj.type == "HostSystem" and hosts:
                if obj.get("runtime.connectionState") != "connected":
                    continue
                if obj.get("runtime.powerState", "poweredOn") != "poweredOn":
                    continue
                host_targets.append(Target("host", obj.moid, obj.name, 0))
    host_targets = [Target("host", t.moid, t.name, host_vcpus.get(t.moid, 0)) for t in host_targets]
    return host_targets + vm_targets


def _latest(series: Any) -> float | None:
    """The newest value of a metric series (normal or CSV format); None for vCenter's -1."""
    values = getattr(series, "value", None)
    if isinstance(values, str):  # CSV format: "v1,v2,..."
        parts = [p for p in values.split(",") if p.strip()]
        values = [float(parts[-1])] if parts else []
    if not values:
        return None
    value = float(values[-1])
    return None if value < 0 else value


# What a converter keeps of one entity's answer: its moid, the sampling interval in
# seconds, and each counter's newest value per instance ({name: {instance: value}}).
Entry = tuple[str, float, dict[str, dict[str, float]]]


def metric_entries(results: Sequence[Any], names: Mapping[int, str]) -> Iterator[Entry]:
    """QueryPerf results (pyVmomi's objects, or perf_soap's plain stand-ins) as entries;
    the parse worker makes the same from the answer's bytes (perf_scan.scan_entries)."""
    for metric in results or []:
        moid = str(getattr(getattr(metric, "entity", None), "_moId", ""))
        infos = getattr(metric, "sampleInfo", None) or []
        interval = float(getattr(infos[-1], "interval", 0) or REALTIME_INTERVAL_ID) if infos else 20
        raw: dict[str, dict[str, float]] = {}
        for series in getattr(metric, "value", None) or []:
            name = names.get(int(series.id.counterId))
            value = _latest(series)
            if name is None or value is None:
                continue
            raw.setdefault(name, {})[str(series.id.instance or "")] = value
        yield moid, interval, raw


def convert_entries(
    entries: Iterable[Entry],
    targets: Mapping[str, Target],
    counters: Mapping[str, list[Counter]],
    received: float,
) -> list[Sample]:
    """Entries -> one :class:`Sample` per known entity with the converted values."""
    out = []
    for moid, interval, raw in entries:
        target = targets.get(moid)
        if target is None:
            continue
        info = Entity(target.kind, target.vcpus, interval)
        sample = Sample(target, received)
        if target.kind == "host":
            sample.datastores = per_instance(raw)
        for counter in counters.get(target.kind, []):
            value = counter.compute(raw, info)
            if value is not None:
                sample.values[counter.key] = value
        out.append(sample)
    return out


def convert_metrics(
    results: Sequence[Any],
    targets: Mapping[str, Target],
    names: Mapping[int, str],
    counters: Mapping[str, list[Counter]],
    received: float,
) -> list[Sample]:
    """QueryPerf results -> one :class:`Sample` per entity with the converted values."""
    return convert_entries(metric_entries(results, names), targets, counters, received)


def build_families(
    vcenter: str,
    samples: Mapping[str, Sample],
    perf: PerfConfig,
    datastores: Mapping[str, tuple[str, str]] | None = None,
) -> list[Family]:
    """The performance families of one vCenter, each as one pre-joined chunk of lines.

    ``datastores`` maps a datastore perf instance to its (moid, name) for the per-datastore
    families, which come from the hosts' samples (none when hosts are not collected).
    """
    vc = escape(vcenter)
    out = []
    for kind in KINDS:
        if not (perf.hosts if kind == "host" else perf.vms):
            continue
        counters = counters_for(kind, perf.counters)
        lines: dict[str, list[str]] = {c.key: [] for c in counters}
        for sample in samples.values():
            t = sample.target
            if t.kind != kind:
                continue
            base = f'{{vcenter="{vc}",{kind}_id="{escape(t.moid)}",{kind}="{escape(t.name)}"}} '
            for key, value in sample.values.items():
                found = lines.get(key)
                if found is not None:
                    found.append(base + fmt(value) + "\n")
        for counter in counters:
            name = counter.metric_name(kind)
            # Every line follows the name: one join puts it before each (400,000 lines a
            # collection at 40,000 VMs, a concatenation each before).
            rows = lines.pop(counter.key)
            chunk = name + name.join(rows) if rows else ""
            # Kept as its gzip member (the family is held until the next collection, and
            # its text was ~16 MiB at 10,000 VMs beside the body's gzip copy of it).
            member = gzip_member(chunk.encode()) if chunk else b""
            del chunk
            out.append(Family(name, counter.help, "gauge", [], [member] if member else []))
    if perf.hosts:
        hosts = (s.datastores for s in samples.values() if s.target.kind == "host")
        out.extend(datastore_families(vcenter, hosts, datastores or {}, perf.counters))
    return out


# --- the collector ---------------------------------------------------------------------------


class _Login:
    """A login running on its own daemon thread."""

    def __init__(self, fn: Callable[[], Any], name: str) -> None:
        self.result: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                self.error = exc

        self.thread = threading.Thread(target=run, name=name, daemon=True)
        self.thread.start()


class PerfCollector:
    """Collects one vCenter's performance counters on its own thread and session."""

    def __init__(
        self,
        vc: VCenterConfig,
        inventory: Inventory,
        perf: PerfConfig,
        *,
        connect_fn: Callable[..., Any] = connect,
    ) -> None:
        self.vc = vc
        self.inventory = inventory
        self.perf = perf
        self._connect = connect_fn
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards everything below that families() reads
        self._listeners: list[Callable[[], None]] = []
        self._si: Any = None
        self._soap: SoapQueryPerf | None = None
        # Query with plain XML (perf_soap) rather than pyVmomi objects; same results, a
        # tenth of the CPU. False only to compare the two (tests, benchmark).
        self.use_soap = True
        # The answers' parse, in a process of its own (with use_soap only).
        self.worker = ParseWorker(4 * perf.timeout_seconds) if perf.worker_process else None
        self._pending_login: _Login | None = None
        self._prepare_after = 0.0  # monotonic: the next login ahead of the sync (_prepare)
        # Set by the inventory's changes: the first collection follows the sync at once.
        self._wake = threading.Event()
        inventory.add_listener(self._wake.set)
        self._perf_manager: Any = None
        self._resolved_for: str | None = None
        self.counter_ids: dict[str, int] = {}  # vSphere counter name -> id on this vCenter
        self.counters = {kind: counters_for(kind, perf.counters) for kind in KINDS}
        self.samples: dict[str, Sample] = {}
        self._families: list[Family] = []
        self._families_at: float | None = None
        self.errors_total: dict[str, int] = dict.fromkeys(ERROR_REASONS, 0)
        self.queries_total = 0
        self.calls_total = 0  # every vCenter call: logins, counter look-ups, queries
        self.collections_total = 0
        self.last_success: float | None = None
        # When (monotonic) the first collection's families were handed out: /readyz waits
        # for a body whose counters were read after it (Exporter.ready).
        self.first_collected_at: float | None = None
        self.last_duration: float | None = None
        self.last_error: str | None = None
        self.entities: dict[str, int] = dict.fromkeys(KINDS, 0)

    # --- lifecycle -------------------------------------------------------------------------
    def add_listener(self, fn: Callable[[], None]) -> None:
        """Called after every collection (the renderer's ``mark_dirty``)."""
        self._listeners.append(fn)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.run, name=f"vha-perf-{self.vc.name}", daemon=True
        )
        self._thread.start()

    def signal_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self.signal_stop()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        if self.worker is not None:  # even mid-collection: its batches fail, it is stopping
            self.worker.close()
        if self._thread is None or not self._thread.is_alive():
            self._drop_session()

    def run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            ready = True
            try:
                ready = self.collect_once()
            except Exception as exc:  # noqa: BLE001 - never let the thread die
                log.exception("vcenter=%s performance collection failed", self.vc.name)
                self._record_error("other", describe(exc))
            elapsed = time.monotonic() - started
            if not ready:  # not synced yet: the first collection follows the sync at once
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self._stop.wait(max(0.0, self.perf.interval_seconds - elapsed))
        log.info("vcenter=%s performance collector stopped", self.vc.name)

    # --- one collection --------------------------------------------------------------------
    def collect_once(self) -> bool:
        """Query every entity once; False when the inventory is not synced yet.

        Runs on the collector's thread (or a test's); never holds the lock ``families()``
        takes while talking to vCenter.
        """
        targets = targets_of(self.inventory, hosts=self.perf.hosts, vms=self.perf.vms)
        if targets is None:
            self._prepare()
            return False
        started = time.perf_counter()
        try:
            perf_manager = self._session()
        except Exception as exc:  # noqa: BLE001 - counted, logged, retried next round
            self._fail(exc, "login")
            return True
        batches = self._batches(targets)
        by_moid = {t.moid: t for t in targets}
        names = {v: k for k, v in self.counter_ids.items()}
        received = time.time()
        results = run_batches(
            batches,
            lambda batch: self._samples(perf_manager, batch, by_moid, names, received),
            self.perf.max_concurrent_queries,
            f"vha-perf-{self.vc.name}",
            stopping=self._stop,
            halts=lambda exc: self._reason(exc) in HALTING,
        )
        fresh: list[Sample] = []
        failures = not_sent = 0
        failed: dict[str, list[BaseException]] = {}  # reason -> the batches' failures
        for result in results:
            if isinstance(result, NotSent):
                failures, not_sent = failures + 1, not_sent + 1
            elif isinstance(result, BaseException):
                failures += 1
                failed.setdefault(self._reason(result), []).append(result)
            else:
                fresh.extend(result)
        for group in failed.values():  # one line per reason, not one per batch
            self._fail(group[0], "QueryPerf", failed=len(group), of=len(batches), not_sent=not_sent)
        now = time.time()
        samples = {
            moid: s
            for moid, s in self.samples.items()
            if moid in by_moid and now - s.received <= self.perf.stale_after_seconds
        }
        for sample in fresh:
            samples[sample.target.moid] = sample
        for moid, sample in samples.items():  # pick up renames and vCPU changes
            if by_moid[moid] != sample.target:
                sample.target = by_moid[moid]
        families = build_families(self.vc.name, samples, self.perf, datastore_index(self.inventory))
        with self._lock:
            self.samples = samples
            self._families = families
            self._families_at = now
            self.collections_total += 1
            self.last_duration = time.perf_counter() - started
            self.entities = {k: sum(1 for s in fresh if s.target.kind == k) for k in KINDS}
            if failures == 0:
                self.last_success = now
            first = self.first_collected_at is None
            if first:
                self.first_collected_at = time.monotonic()
        if first:  # a step of the timeline to /readyz (docs/exporter.md)
            log.info(
                "vcenter=%s first performance collection: %d samples in %.2fs",
                self.vc.name,
                len(fresh),
                time.perf_counter() - started,
            )
        for fn in list(self._listeners):
            fn()
        return True

    def _prepare(self) -> None:
        """While the inventory syncs (a minute at 40,000 VMs): log in, resolve the
        counters and start the parse worker, so the first collection starts querying as
        soon as the sync ends (these took seconds after it, on the way to /readyz). Tried
        once per interval; a failure is only logged here: the collection's own login
        retries it, and counts it."""
        now = time.monotonic()
        if self._si is not None or now < self._prepare_after:
            return
        self._prepare_after = now + self.perf.interval_seconds
        try:
            self._session()
            if self.worker is not None:  # spawned now, not in the first collection's time
                self.worker.call(worker_pid)
        except Exception as exc:  # noqa: BLE001 - retried and counted by the collection
            log.info("vcenter=%s performance login before the sync failed: %s", self.vc.name, exc)

    def _session(self) -> Any:
        """The PerformanceManager of a live session; logs in and resolves counters if needed."""
        if self._si is None:
            self._si = self._login()
            self._count_calls(2)  # RetrieveServiceContent + Login
            content = self._si.RetrieveContent()
            self._perf_manager = content.perfManager
            if self.use_soap and SoapQueryPerf.usable(self._si):
                self._soap = SoapQueryPerf.for_manager(
                    self._si, self.vc, str(self._perf_manager._moId), self.perf.timeout_seconds
                )
            uuid = str(getattr(content.about, "instanceUuid", "") or "")
            if uuid != self._resolved_for or not self.counter_ids:
                self._resolve_counters(self._perf_manager)
                self._resolved_for = uuid
        return self._perf_manager

    def _login(self) -> Any:
        """A new session, waiting at most twice ``timeout_seconds``.

        pyVmomi's ``SmartConnect`` probes the API version without a socket timeout, so a
        vCenter that accepts connections and never answers would hang the collector; the
        login runs on a helper thread instead, and a hung one is not started twice.
        """
        pending = self._pending_login
        if pending is None:  # else: the login we gave up on last time, finished or not
            pending = self._pending_login = _Login(
                lambda: self._connect(self.vc, timeout=self.perf.timeout_seconds),
                f"vha-perf-login-{self.vc.name}",
            )
        limit = 2 * self.perf.timeout_seconds  # a login is a few round trips
        pending.thread.join(limit)
        if pending.thread.is_alive():
            raise TimeoutError(f"login did not finish within {limit:g}s")
        self._pending_login = None
        if pending.error is not None:
            raise pending.error
        return pending.result

    def _resolve_counters(self, perf_manager: Any) -> None:
        """Counter ids by ``group.name.rollup``, for the counters configured; checks units."""
        infos = perf_manager.perfCounter
        self._count_calls(1)
        available = {
            f"{i.groupInfo.key}.{i.nameInfo.key}.{i.rollupType}": (int(i.key), i.unitInfo.key)
            for i in infos or []
        }
        ids: dict[str, int] = {}
        for kind in KINDS:
            for source in sources_for(self.counters[kind], kind):
                found = available.get(source.name)
                if found is None:
                    log.warning(
                        "vcenter=%s performance counter %s is not available; skipped",
                        self.vc.name,
                        source.name,
                    )
                elif found[1] != source.unit:
                    log.warning(
                        "vcenter=%s performance counter %s is in %s, expected %s; skipped",
                        self.vc.name,
                        source.name,
                        found[1],
                        source.unit,
                    )
                else:
                    ids[source.name] = found[0]
        with self._lock:
            self.counter_ids = ids
        log.info("vcenter=%s resolved %d performance counters", self.vc.name, len(ids))

    def _metric_ids(self, kind: str) -> list[tuple[int, str]]:
        return [
            (self.counter_ids[s.name], s.instance)
            for s in sources_for(self.counters[kind], kind)
            if s.name in self.counter_ids
        ]

    def _batches(self, targets: list[Target]) -> list[list[Target]]:
        queried = [t for t in targets if self._metric_ids(t.kind)]
        size = self.perf.batch_size
        return [queried[i : i + size] for i in range(0, len(queried), size)]

    def _samples(
        self,
        perf_manager: Any,
        batch: list[Target],
        by_moid: Mapping[str, Target],
        names: Mapping[int, str],
        received: float,
    ) -> list[Sample]:
        """One batch queried and converted (the answer parsed in the worker process when
        there is one and the answer is plain XML)."""
        result = self._query(perf_manager, batch)
        if isinstance(result, bytes) and self.worker is not None:
            rows = [(t.kind, t.moid, t.name, t.vcpus) for t in batch]
            converted = self.worker.run(result, rows, names, self.perf.counters)
            return [
                Sample(by_moid[m], received, v, datastores=ds)
                for m, v, ds in converted
                if m in by_moid
            ]
        return convert_metrics(result, by_moid, names, self.counters, received)

    def _query(self, perf_manager: Any, batch: list[Target]) -> Any:
        """One QueryPerf; an entity deleted since the inventory was read is dropped and the
        rest asked again (vCenter fails the whole call with ManagedObjectNotFound)."""
        for attempt in range(_NOT_FOUND_RETRIES + 1):
            self._count_calls(1, query=True)
            try:
                return self._query_once(perf_manager, batch)
            except vmodl.fault.ManagedObjectNotFound as exc:
                gone = str(getattr(exc.obj, "_moId", ""))
                remaining = [t for t in batch if t.moid != gone]
                if attempt == _NOT_FOUND_RETRIES or len(remaining) in (0, len(batch)):
                    raise
                batch = remaining
        raise AssertionError("unreachable")

    def _query_once(self, perf_manager: Any, batch: list[Target]) -> list[Any] | bytes:
        """The batch's answer: parsed metrics, or the raw XML for the worker process."""
        ids = {kind: self._metric_ids(kind) for kind in KINDS}
        soap = self._soap
        if soap is not None:  # the fast path: plain XML both ways
            xml = {kind: metric_ids_xml(v) for kind, v in ids.items()}
            specs = [(_MOREF_TYPES[t.kind]._wsdlName, t.moid, xml[t.kind]) for t in batch]
            if self.worker is not None:
                return soap.query_raw(specs, REALTIME_INTERVAL_ID)
            return list(soap.query(specs, REALTIME_INTERVAL_ID))
        stub = getattr(self._si, "_stub", None)
        query_specs = [
            vim.PerformanceManager.QuerySpec(
                entity=_MOREF_TYPES[t.kind](t.moid, stub),
                metricId=[
                    vim.PerformanceManager.MetricId(counterId=c, instance=i) for c, i in ids[t.kind]
                ],
                intervalId=REALTIME_INTERVAL_ID,
                maxSample=1,
                format="normal",
            )
            for t in batch
        ]
        return list(perf_manager.QueryPerf(querySpec=query_specs) or [])

    # --- errors and sessions ---------------------------------------------------------------
    def _count_calls(self, n: int, *, query: bool = False) -> None:
        with self._lock:
            self.calls_total += n
            if query:
                self.queries_total += n

    def _reason(self, exc: BaseException) -> str:
        """:func:`classify`, with a session vCenter no longer knows told from a bad login."""
        if self._si is not None and isinstance(exc, vim.fault.NotAuthenticated):
            return "session"
        return classify(exc)

    def _fail(
        self, exc: BaseException, what: str, *, failed: int = 1, of: int = 1, not_sent: int = 0
    ) -> None:
        """Log ``exc`` once (for ``failed`` of ``of`` batches, ``not_sent`` others not
        sent) and count each failed call."""
        reason = self._reason(exc)
        message = describe(exc)
        scope = ""
        if of > 1:
            scope = f" for {failed} of {of} batches" + (
                f" ({not_sent} not sent)" if not_sent else ""
            )
        log.warning(
            "vcenter=%s url=%s performance %s failed%s (reason=%s): %s",
            self.vc.name,
            self.vc.url,
            what,
            scope,
            reason,
            message,
        )
        for _ in range(failed):
            self._record_error(reason, message)
        if reason in ("connect", "auth", "session", "timeout") or what == "login":
            self._drop_session()

    def _record_error(self, reason: str, message: str) -> None:
        with self._lock:
            self.errors_total[reason] = self.errors_total.get(reason, 0) + 1
            self.last_error = message

    def _drop_session(self) -> None:
        si, self._si, self._perf_manager = self._si, None, None
        soap, self._soap = self._soap, None
        if soap is not None:
            soap.close()
        disconnect(si)

    # --- metrics ---------------------------------------------------------------------------
    def families(self) -> list[Family]:
        """The latest collection's families plus the collector's own; never blocks on vCenter.

        Nothing is served while the vCenter's inventory is down (a blind watcher claims
        nothing) or when the last collection is older than ``stale_after_seconds``.
        """
        base = f'vcenter="{escape(self.vc.name)}"'
        with self._lock:
            perf = list(self._families)
            built = self._families_at
            duration = self.last_duration
            success = self.last_success
            queries = self.queries_total
            errors = dict(self.errors_total)
            entities = dict(self.entities)
            counters = len(self.counter_ids)
        inv = self.inventory
        fresh = built is not None and time.time() - built <= self.perf.stale_after_seconds
        out = perf if (fresh and inv.up and inv.synced) else []
        own = [
            Family(
                "vsphere_perf_collection_duration_seconds",
                "How long the last performance-counter collection took.",
            ),
            Family("vsphere_perf_queries_total", "QueryPerf calls made.", "counter"),
            Family(
                "vsphere_perf_errors_total",
                "Failed performance logins and queries, by reason.",
                "counter",
            ),
            Family(
                "vsphere_perf_last_success_timestamp_seconds",
                "When the last collection without a failed query finished, Unix seconds.",
            ),
            Family(
                "vsphere_perf_entities",
                "Hosts and VMs with a sample in the last collection.",
            ),
            Family(
                "vsphere_perf_counters",
                "vSphere performance counters resolved by name on this vCenter.",
            ),
        ]
        took, queried, failed, last, seen, resolved = own
        if duration is not None:
            took.add(base, duration)
        queried.add(base, queries)
        for reason, n in errors.items():
            failed.add(f'{base},reason="{reason}"', n)
        if success is not None:
            last.add(base, success)
        for kind, n in entities.items():
            seen.add(f'{base},type="{kind}"', n)
        resolved.add(base, counters)
        return out + own


def collectors_for(
    config: Config, inventories: Sequence[Inventory], perf: PerfConfig | None = None
) -> list[PerfCollector]:
    """One collector per vCenter (none when ``performance.enabled`` is false)."""
    perf = perf or parse_performance_config(config)
    if not perf.enabled:
        return []
    return [
        PerfCollector(vc, inv, perf) for vc, inv in zip(config.vcenters, inventories, strict=True)
    ]
