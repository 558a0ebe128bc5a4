"""One collector per concern (as node_exporter does), each a function of a render context.

A collector that raises does not blank the scrape: the exporter reports it through
``vsphere_scrape_collector_success{collector}`` and serves the other families.
"""

from __future__ import annotations

from collections.abc import Callable

from ..families import Family
from . import alarms, clusters, datastores, hardware, hosts, tags, vms
from .context import CollectorUnavailable, RenderContext

CollectorFn = Callable[[RenderContext], list[Family]]

COLLECTORS: dict[str, CollectorFn] = {
    "host": hosts.collect,
    "vm": vms.collect,
    "cluster": clusters.collect,
    "datastore": datastores.collect,
    "tags": tags.collect,
    "alarms": alarms.collect,
    "hardware": hardware.collect,
}

__all__ = ["COLLECTORS", "CollectorFn", "CollectorUnavailable", "RenderContext"]
