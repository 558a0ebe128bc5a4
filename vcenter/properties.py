"""Paged ``RetrievePropertiesEx`` over a ContainerView, for both daemons.

Some properties never reach a ``WaitForUpdatesEx`` client: the vSphere API reference says
QuickStats "does not support notification, for scalability reasons" and that servers
"might not generate property collector update notifications" for ``overallStatus``.  They
have to be read.  One batched call per page (``maxObjects`` objects), never one per object,
keeps that to a handful of calls per minute at 10,000 VMs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pyVmomi import vim, vmodl

PAGE_OBJECTS = 1000

PC = vmodl.query.PropertyCollector


def view_filter_spec(view: Any, properties: Mapping[str, Sequence[str]]) -> Any:
    """A FilterSpec selecting ``properties`` (type name -> paths) of everything in ``view``."""
    traverse = PC.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)
    return PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[traverse])],
        propSet=[
            PC.PropertySpec(type=getattr(vim, t), pathSet=list(paths))
            for t, paths in properties.items()
            if paths
        ],
    )


def retrieve_pages(
    collector: Any, spec: Any, *, page_objects: int = PAGE_OBJECTS
) -> Iterator[list[Any]]:
    """Yield the ObjectContents of ``spec`` one page at a time.

    A caller that stops early leaves a continuation token on the server; it is cancelled
    with ``CancelRetrievePropertiesEx`` so the vCenter does not keep the result set.
    """
    options = PC.RetrieveOptions(maxObjects=page_objects)
    result = collector.RetrievePropertiesEx(specSet=[spec], options=options)
    token = None
    try:
        while result is not None:
            token = result.token
            yield list(result.objects or [])
            if not token:
                return
            result = collector.ContinueRetrievePropertiesEx(token=token)
            token = None
    finally:
        if token:
            try:
                collector.CancelRetrievePropertiesEx(token=token)
            except Exception:  # noqa: BLE001 - best effort; the session may be gone
                pass
