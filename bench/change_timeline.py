"""Where a change's way to /metrics goes, per change (issue 15, item 2).

For each host maintenance flip, four wall-clock moments, printed relative to the change:

- ``change``: the simulator's API call returned (the change is in its inventory);
- ``bare``: a bare ``WaitForUpdatesEx`` client, on the SAME filter spec as the exporter's
  (``create_follow_filter``) and listening at the same time, got the answer's headers: the
  simulator's own delivery of this very change;
- ``follower``: the exporter's follower got the answer's headers
  (``vsphere_sync_last_update_timestamp_seconds`` in the body that first shows the change);
- ``body``: the scrape that first showed the change started (the body was published
  between the previous scrape's start, ``body_lo``, and this one's).

``follower - bare`` is the simulator serving the exporter's collector later than the bare
one (its queue, its turn), or the follower not yet waiting; ``body - follower`` is the
exporter's read, parse and render (``vsphere_sync_update_parse_seconds`` plus
``vsphere_render_lag_seconds``), within one scrape's granularity; ``own_lag`` is the
exporter's own stamp of that share for the change (``vsphere_render_last_lag_seconds``),
finer than any observation from outside.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable
from typing import Any

from pyVmomi import vmodl

from exporter.sync import create_follow_filter
from exporter.wire import install
from vcenter.session import connect, disconnect

from .exporter_bench import initial_sync


class BareClient:
    """A process of its own following the exporter's filter spec; notes when each host's
    ``runtime.inMaintenanceMode`` arrived true (Unix seconds, header arrival).

    A process, not a thread: the bench's own search of a 135 MB body holds its GIL for
    seconds on a loaded machine, which would stamp the bare client's answers late.
    """

    def __init__(self, vc: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._queue: Any = ctx.Queue()
        self._stop = ctx.Event()
        self._proc = ctx.Process(
            target=_follow, args=(vc, self._queue, self._stop), name="bench-bare", daemon=True
        )
        self.seen: dict[str, float] = {}

    def start(self, timeout: float = 1800) -> None:
        self._proc.start()
        if self._queue.get(timeout=timeout) != "ready":
            raise RuntimeError("bare client: initial sync failed")

    def poll(self) -> None:
        """Take what the process reported so far."""
        while True:
            try:
                moid, arrived = self._queue.get_nowait()
            except queue.Empty:
                return
            self.seen.setdefault(moid, arrived)

    def stop(self) -> None:
        self._stop.set()
        self._proc.join(timeout=15)
        if self._proc.is_alive():
            self._proc.terminate()


def _follow(vc: Any, out: Any, stop: Any) -> None:
    si = connect(vc)
    try:
        content = si.RetrieveContent()
        pc, _view = create_follow_filter(content)
        wire = install(si)
        version = initial_sync(pc)
        out.put("ready")
        opts = vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=5, maxObjectUpdates=500)
        while not stop.is_set():
            wire.reset()
            result = pc.WaitForUpdatesEx(version, opts)
            if result is None:
                continue
            arrived, _parse, _size = wire.answer(time.monotonic())
            version = result.version
            for fu in result.filterSet or []:
                for ou in fu.objectSet or []:
                    for ch in ou.changeSet or []:
                        if ch.name.endswith("inMaintenanceMode") and ch.val:
                            out.put((str(ou.obj._moId), arrived))
    except Exception as exc:  # noqa: BLE001 - a bench figure goes missing, not the run
        print(f"  bare client stopped: {exc!r}", flush=True)
        out.put("failed")
    finally:
        disconnect(si)


def last_update(body: bytes) -> float:
    """``vsphere_sync_last_update_timestamp_seconds`` of the body (bytes.find: a regex over
    135 MB holds the bench's GIL for seconds)."""
    at = body.find(b"\nvsphere_sync_last_update_timestamp_seconds{")
    if at < 0:
        return float("nan")
    line = body[at + 1 : body.find(b"\n", at + 1)]
    return float(line.rsplit(b" ", 1)[1])


def sample_value(body: bytes, name: str) -> float:
    """An unlabelled series' value (bytes.find, as :func:`last_update`)."""
    at = body.find(b"\n" + name.encode() + b" ")
    if at < 0:
        return float("nan")
    return float(body[at + 1 : body.find(b"\n", at + 1)].rsplit(b" ", 1)[1])


def own_lag(
    fetch: Callable[[str], tuple[float, bytes]], url: str, count_before: float, timeout: float
) -> float:
    """``vsphere_render_last_lag_seconds`` from the first body that counts an observation
    after ``count_before``: the exporter's own share of the change (follower's read to the
    body published), stamped by the exporter. The lag family is rendered by full renders,
    so it shows a few seconds after the patch that published the change; a later
    observation (a poll's changes) may have replaced it by then: an upper bound, then."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = fetch(url)[1]
        if sample_value(body, "vsphere_render_lag_seconds_count") > count_before:
            return sample_value(body, "vsphere_render_last_lag_seconds")
        time.sleep(0.5)
    return float("nan")


def timeline(
    sim: Any,
    vc: Any,
    url: str,
    hosts: list[dict[str, Any]],
    fetch: Callable[[str], tuple[float, bytes]],
    timeout: float,
) -> list[dict[str, float]]:
    """Flip each host into maintenance and back; the four moments of each (see above).

    The body is watched with gzip scrapes of the whole body (as Prometheus asks; served
    from the pieces' gzip members, so the scrape costs the exporter next to nothing); the
    bench's decompression and search of 135 MB bound the body's moment to an interval,
    ``body_lo_s`` (the start of the last scrape that did not show it) to ``body_s``.
    Watching a shard instead would make the exporter split every full render 16 ways
    (seconds of the GIL at 10,000 VMs) while it is being measured.
    """
    bare = BareClient(vc)
    bare.start()
    rows = []
    try:
        for host in hosts:
            shown = b'\nvsphere_host_maintenance_mode{vcenter="%s",host_id="%s",host="%s"} 1\n' % (
                vc.name.encode(),
                host["moid"].encode(),
                host["name"].encode(),
            )
            lags_before = sample_value(fetch(url)[1], "vsphere_render_lag_seconds_count")
            t_set = time.time()
            sim.set_host(host["name"], inMaintenanceMode=True)
            t_change = time.time()
            body_at = body_lo = follower = float("nan")
            last_start = t_change
            while time.time() - t_change < timeout:
                start = time.time()
                _, body = fetch(url)
                if body.find(shown) >= 0:
                    body_at, body_lo, follower = start, last_start, last_update(body)
                    break
                last_start = start
            own = own_lag(fetch, url, lags_before, 30) if body_at == body_at else float("nan")
            deadline = time.time() + 30
            while host["moid"] not in bare.seen and time.time() < deadline:
                bare.poll()
                time.sleep(0.05)
            row = {
                "set_call_s": t_change - t_set,
                "bare_s": bare.seen.get(host["moid"], float("nan")) - t_change,
                "follower_s": follower - t_change,
                "body_lo_s": body_lo - t_change,
                "body_s": body_at - t_change,
                "own_lag_s": own,
            }
            rows.append(row)
            print(
                "  change {}: +0 set (call {:.3f}s), bare client +{:.2f}s, follower "
                "+{:.2f}s, body +{:.2f}..{:.2f}s, exporter's own lag {:.3f}s".format(
                    host["name"],
                    row["set_call_s"],
                    row["bare_s"],
                    row["follower_s"],
                    row["body_lo_s"],
                    row["body_s"],
                    row["own_lag_s"],
                ),
                flush=True,
            )
            sim.set_host(host["name"], inMaintenanceMode=False)
            time.sleep(1.0)  # the flip back reaches both before the next change
    finally:
        bare.stop()
    return rows
