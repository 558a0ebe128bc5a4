"""One collector per concern (as node_exporter does), each a function of a render context.

A collector that raises does not blank the scrape: the exporter reports it through
``vsphere_scrape_collector_success{collector}`` and serves the other families.
"""

from __future__ import annotations

from collections.abc import Callable

from ..families import Family
from . import (
    alarms,
    attributes,
    clusters,
    datastores,
    guest,
    hardware,
    hosts,
    licenses,
    pools,
    snapshots,
    tags,
    tools,
    vms,
)
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
    "tools": tools.collect,
    "guest_disks": guest.collect,
    "custom_attributes": attributes.collect,
    "resource_pool": pools.collect,
    "licenses": licenses.collect,
    "snapshot_sizes": snapshots.collect,
}

__all__ = ["COLLECTORS", "CollectorFn", "CollectorUnavailable", "RenderContext"]
