"""Re-reads the followed properties that vCenter never announces.

The vSphere API reference: VirtualMachineQuickStats and HostListSummaryQuickStats "do not
support notification, for scalability reasons", so their changes never reach a
``WaitForUpdatesEx`` client; for ``overallStatus`` (and the ``overallStatus`` inside a
cluster's ``summary``) "vSphere Servers might not generate property collector update
notifications".  Followed alone they would freeze at the last full sync.  The follower
calls :func:`poll` every ``sync.poll_interval_seconds`` between two ``WaitForUpdatesEx``
rounds, in its own thread (never the event loop): one paged ``RetrievePropertiesEx`` over
the same ContainerView, one call per page of objects, folded into the same inventory.
"""

from __future__ import annotations

import time
from typing import Any

from vcenter.properties import retrieve_pages, view_filter_spec

from .inventory import PROPERTIES, Inventory, expand


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
        inventory.apply_polled(rows)
    with inventory.lock:
        inventory.polls_total += 1
        inventory.poll_duration = time.monotonic() - start
    inventory.touch()
    return calls
