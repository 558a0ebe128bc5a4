"""Reading vCenter's answers for what they prove, and no more.

A property read can come back "successfully" and still say nothing: when a session has
ended, vCenter (and vcsim) answer RetrievePropertiesEx with each object's properties in
``missingSet``, each carrying ``NotAuthenticated``, and an empty ``propSet``.  Read
naively, that looks like a deleted object.  The vSphere API reference is precise about
what proves absence: with ``reportMissingObjectsInResults`` set, "in a RetrieveResult
missing objects will simply be omitted from the objects field"; a
``ManagedObjectNotFound`` fault names an object that does not exist.  Every other fault in
``missingSet`` (NotAuthenticated, NoPermission, SystemError, ...) means *the read failed*,
and is raised so that the caller retries instead of concluding anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pyVmomi import vmodl


def checked_contents(contents: Iterable[Any]) -> list[Any]:
    """The ObjectContents of a read, minus objects proved gone; raises a failed read.

    An object whose ``missingSet`` holds ``ManagedObjectNotFound`` is dropped (it is gone);
    ``InvalidProperty`` only means that one property does not apply to the object (left
    out, as an unset property is); any other fault is raised as it came.
    """
    out = []
    for content in contents:
        missing = getattr(content, "missingSet", None) or []
        gone = False
        for item in missing:
            fault = getattr(item, "fault", None)
            if isinstance(fault, vmodl.fault.ManagedObjectNotFound):
                gone = True
            elif isinstance(fault, vmodl.query.InvalidProperty):
                continue
            elif isinstance(fault, BaseException):
                raise fault
            else:
                raise vmodl.fault.SystemError(
                    msg=f"property {getattr(item, 'path', '?')} could not be read",
                    reason="missingSet without a fault",
                )
        if not gone:
            out.append(content)
    return out
