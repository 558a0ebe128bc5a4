"""Re-reads the followed properties that vCenter never announces.

The vSphere API reference: VirtualMachineQuickStats and HostListSummaryQuickStats "do not
support notification, for scalability reasons", so their changes never reach a
``WaitForUpdatesEx`` client; for ``overallStatus`` (and the ``overallStatus`` inside a
cluster's ``summary``) "vSphere Servers might not generate property collector update
notifications".  Followed alone they would freeze at the last full sync.  The vCenter's
poller thread (pollers.py, its own session, never the event loop) calls :func:`poll` every
``sync.poll_interval_seconds``: one paged ``RetrievePropertiesEx`` over a ContainerView of
the followed types, one call per page of objects, folded into the same inventory.  It is
not the follower's thread: at 40,000 VMs a poll takes longer than its interval, and a
change must never wait behind it.
"""

from __future__ import annotations

import time
from typing import Any

from vcenter.properties import retrieve_pages, view_filter_spec

from .inventory import PROPERTIES, Inventory, expand, revision_mark


def polled_path(type_name: str, path: str) -> bool:
    """Whether vCenter may change ``path`` without telling property collectors."""
    if path == "overallStatus" or path.startswith("summary.quickStats"):
        return True
    return type_name == "ClusterComputeResource" and path == "summary"


POLLED: dict[str, list[str]] = {
    t: [p for p in paths if polled_path(t, p)] for t, paths in PROPERTIES.items()
}
POLLED = {t: paths for t, paths in POLLED.items() if paths}


def poll(collector: Any, view: Any, inventory: Inventory) -> int:
    """Read every polled property of every object in ``view``; returns the calls made."""
    start = time.monotonic()
    mark = revision_mark()  # objects the follower changes from now on keep its values
    spec = view_filter_spec(view, POLLED)
    calls = 0
    for page in retrieve_pages(collector, spec):
        calls += 1
        rows = []
        for content in page:
            obj = content.obj
            type_name = obj._wsdlName
            values: dict[str, Any] = dict.fromkeys(POLLED.get(type_name, ()))
            for prop in content.propSet or []:
                for path, value in expand(str(prop.name), prop.val):
                    values[path] = value
            rows.append((type_name, str(obj._moId), values))
        del page
        inventory.apply_polled(rows, newer_than=mark)
    with inventory.lock:
        inventory.polls_total += 1
        inventory.poll_duration = time.monotonic() - start
    inventory.touch()
    return calls
